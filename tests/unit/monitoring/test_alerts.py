"""The alert rules in the chart: well formed, on metrics we export, each saying what to do."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplex.deploy.monitoring.dashboards import OUT
from mpxtest.exported import our_series
from mpxtest.promql import Labels, expression_problems

ALERTS = OUT.parent / "alerts.yaml"
WANTED = {
    "ModelplexGateway5xxRatioHigh",
    "ModelplexLedgerUnreachable",
    "ModelplexJournalBacklogGrowing",
    "ModelplexTenantBudgetAt90Percent",
    "ModelplexModelHasNoHealthyReplica",
}


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}  # the chart puts this list under a PrometheusRule's spec
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Labels]:
    return our_series(tmp_path_factory.mktemp("journal"))


def test_the_alerts_an_operator_must_be_woken_for_are_there() -> None:
    names = [rule["alert"] for rule in _rules()]
    assert set(names) >= WANTED
    assert len(names) == len(set(names))


def test_every_rule_waits_has_a_severity_and_says_what_happened_and_what_to_do() -> None:
    for rule in _rules():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["for"][-1] in "ms"
        assert int(rule["for"][:-1]) > 0
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"].strip()
        assert len(rule["annotations"]["description"]) > 80


def test_every_expression_reads_metrics_we_export_with_labels_they_have(known: dict[str, Labels]) -> None:
    problems = [f"{r['alert']}: {p}" for r in _rules() for p in expression_problems(r["expr"], known)]
    assert problems == []


def test_a_misspelt_metric_in_a_rule_is_caught(tmp_path: Path, known: dict[str, Labels]) -> None:
    rule = next(r for r in _rules() if r["alert"] == "ModelplexTenantBudgetAt90Percent")
    misspelt = rule["expr"].replace("budget_used_ratio", "budget_use_ratio")
    assert any(
        "modelplex_gateway_budget_use_ratio is not a metric" in p
        for p in expression_problems(misspelt, known)
    )
