"""The checker the dashboard and alert tests rely on: it must catch what it is there to catch."""

from pathlib import Path

import pytest

from mpxtest.exported import gateway_series, our_series
from mpxtest.promql import Labels, expression_problems, interpolated, label_values_query

KNOWN: dict[str, Labels] = {
    "http_requests_total": frozenset({"model", "code"}),
    "latency_seconds_bucket": frozenset({"model", "le"}),
}


@pytest.mark.parametrize(
    "expr",
    [
        'sum by (model) (rate(http_requests_total{code=~"5.."}[$__rate_interval]))',
        "histogram_quantile(0.9, sum by (le, model) (rate(latency_seconds_bucket[5m])))",
        "sum by (model) (rate(http_requests_total[5m])) / on (model) group_left sum by (model, le) "
        "(rate(latency_seconds_bucket[5m]))",
        "max by (instance, pod) (http_requests_total)",  # labels Prometheus adds to every target
        'label_replace(http_requests_total, "x", "$1", "model", "(.*)")',
        "topk(3, sum without (code) (http_requests_total)) > 0",
    ],
)
def test_sound_expressions_have_no_problems(expr: str) -> None:
    assert expression_problems(expr, KNOWN) == []


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(http_request_total[5m])", "http_request_total is not a metric our components export"),
        ("rate(http_request_total[5m])", "did you mean http_requests_total?"),
        ("sum by (tenant) (rate(http_requests_total[5m]))", "sum by uses ['tenant']"),
        ('rate(http_requests_total{tenant="a"}[5m])', "the selector of http_requests_total uses ['tenant']"),
        (
            "histogram_quantile(0.9, sum by (model) (rate(latency_seconds_bucket[5m])))",
            "histogram_quantile over series without 'le'",
        ),
        ("sum by (model) (sum by (code) (http_requests_total))", "sum by uses ['model']"),
        ("a / on (tenant) http_requests_total", "a is not a metric"),
        ("http_requests_total / on (tenant) http_requests_total", "on (...), left side uses ['tenant']"),
        ("sum(rate(http_requests_total[5m])", "does not parse"),
    ],
)
def test_each_kind_of_mistake_is_named(expr: str, problem: str) -> None:
    assert any(problem in found for found in expression_problems(expr, KNOWN))


def test_grafana_variables_are_filled_in_before_parsing() -> None:
    assert interpolated('rate(x{model=~"$model", t=~"${tenant:regex}"}[$__rate_interval])') == (
        'rate(x{model=~".*", t=~".*"}[5m])'
    )
    assert label_values_query('label_values(x{model=~"$model"}, tenant)') == ('x{model=~"$model"}', "tenant")
    assert label_values_query("label_values(model)") == (None, "model")
    with pytest.raises(ValueError, match="not a label_values"):
        label_values_query("query_result(x)")


def test_the_gateways_series_come_from_its_registry_with_their_labels(tmp_path: Path) -> None:
    series = gateway_series(tmp_path)
    assert series["modelplex_gateway_requests_total"] == {"tenant", "model", "code"}
    assert series["modelplex_gateway_request_duration_seconds_bucket"] == {"tenant", "model", "le"}
    assert "modelplex_gateway_requests" not in series  # the exposed name carries _total
    known = our_series(tmp_path)
    assert {"modelplex_autoscaler_decisions_total", "vllm:kv_cache_usage_perc"} <= set(known)
