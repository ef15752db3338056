"""The Grafana dashboards in the chart: what the builder makes, in Grafana's form, on metrics we export."""

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from modelplex.deploy.monitoring import dashboards
from mpxtest.exported import our_series
from mpxtest.promql import Labels, expression_problems, label_values_query, selectors

FILES = dashboards.OUT
RANGE = re.compile(r"\[([^\]]*)\]")


def _boards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(FILES.glob("*.json"))}


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _exprs(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in _panels(board):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Labels]:
    return our_series(tmp_path_factory.mktemp("journal"))


def test_the_committed_json_is_what_the_builder_makes() -> None:
    committed = {path.name: path.read_text() for path in FILES.glob("*.json")}
    assert committed == dashboards.rendered(), "run: python deploy/monitoring/dashboards.py"


def test_there_is_a_gateway_and_a_models_board_with_stable_uids() -> None:
    boards = _boards()
    assert set(boards) == {"modelplex-gateway.json", "modelplex-models.json"}
    for name, board in boards.items():
        assert board["uid"] == name.removesuffix(".json")
        assert board["schemaVersion"] >= 39


@pytest.mark.parametrize("name", ["modelplex-gateway.json", "modelplex-models.json"])
def test_every_query_reads_metrics_we_export_with_labels_they_have(
    name: str, known: dict[str, Labels]
) -> None:
    board = _boards()[name]
    problems = [
        f"{title}: {expr}: {p}" for title, expr in _exprs(board) for p in expression_problems(expr, known)
    ]
    assert problems == []
    assert len(list(_exprs(board))) >= 10


@pytest.mark.parametrize("name", ["modelplex-gateway.json", "modelplex-models.json"])
def test_rates_use_the_rate_interval_and_quantiles_sum_buckets_by_le(name: str) -> None:
    for title, expr in _exprs(_boards()[name]):
        assert set(RANGE.findall(expr)) <= {"$__rate_interval"}, f"{title}: {expr}"
        if "histogram_quantile" in expr:
            assert re.search(r"histogram_quantile\([\d.]+, sum by \(le, \w+\) \(rate\(\w+_bucket\{", expr), (
                expr
            )


@pytest.mark.parametrize("name", ["modelplex-gateway.json", "modelplex-models.json"])
def test_panels_read_the_datasource_variable_and_the_model_and_tenant_variables_exist(
    name: str, known: dict[str, Labels]
) -> None:
    board = _boards()[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in ("model", "tenant"):
        selector, label = label_values_query(variables[variable]["query"])
        assert label == variable
        assert selector is not None
        assert expression_problems(selector, known) == []
        assert variables[variable]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for panel in _panels(board):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])


# Which variable filters which label: vLLM names the served model `model_name`.
FILTERS = {"model": "$model", "model_name": "$model", "tenant": "$tenant"}


@pytest.mark.parametrize("name", ["modelplex-gateway.json", "modelplex-models.json"])
def test_every_series_with_a_model_or_tenant_label_is_filtered_by_the_variable(
    name: str, known: dict[str, Labels]
) -> None:
    for title, expr in _exprs(_boards()[name]):
        for metric, matchers in selectors(expr):
            assert metric is not None
            for label, variable in FILTERS.items():
                if label in known[metric]:
                    assert matchers.get(label) == variable, f"{title}: {metric} is not filtered by {variable}"


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    for board in _boards().values():
        taken: set[tuple[int, int]] = set()
        for panel in _panels(board):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & taken, panel["title"]
            taken |= cells
        ids = [panel["id"] for panel in _panels(board)]
        assert len(ids) == len(set(ids))


def test_a_misspelt_metric_in_a_panel_is_caught(known: dict[str, Labels]) -> None:
    _, expr = next(_exprs(_boards()["modelplex-gateway.json"]))
    misspelt = expr.replace("modelplex_gateway_requests_total", "modelplex_gateway_request_total")
    assert misspelt != expr
    assert expression_problems(misspelt, known)
