"""The model page's load over time, pure parts: the queries, the evaluation moments, the payload
(a gap where nothing was measured), and the words when no Prometheus is configured."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelplex.billing.console.charts import timeline_chart
from modelplex.billing.console.history import MAX_POINTS, load_history, queries, steps

pytestmark = pytest.mark.anyio


def test_queries_select_the_model_by_each_components_label_with_the_step_as_window() -> None:
    found = queries('a"b', 60)
    assert (
        found["waiting in engines"]
        == 'sum(max_over_time(vllm:num_requests_waiting{model_name="a\\"b"}[60s]))'
    )
    assert (
        found["held by gateways"] == 'sum(max_over_time(modelplex_gateway_queue_depth{model="a\\"b"}[60s]))'
    )
    assert found["KV cache use"] == 'avg(avg_over_time(vllm:kv_cache_usage_perc{model_name="a\\"b"}[60s]))'


def test_a_month_has_at_most_max_points_and_ends_at_the_moment_asked() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    end = datetime(2026, 12, 31, 10, 0, 0, 250_000, tzinfo=UTC)
    first, last, step = steps(start, end)
    assert last == end.timestamp() // 1 + 1  # rounded up: the newest sample is inside
    assert (last - first) / step <= MAX_POINTS
    assert first >= start.timestamp()
    assert step == float(int(step))
    assert steps(end, end)[2] == 15.0


def test_a_timeline_has_a_value_per_moment_and_a_gap_where_none_was_measured() -> None:
    payload = timeline_chart("t", {"a": {100.0: 1.0, 130.0: 2.5}}, 100.0, 130.0, 15.0)
    assert payload == {
        "title": "t",
        "kind": "lines",
        "x": [100, 115, 130],
        "series": [{"label": "a", "values": [1.0, None, 2.5]}],
    }


async def test_without_a_prometheus_url_there_is_no_chart_and_the_page_says_which_setting() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    history = await load_history(None, 5.0, "m", start, datetime(2026, 12, 2, tzinfo=UTC))
    assert history.charts == ()
    assert "MODELPLEX_BILLING_PROMETHEUS_URL" in history.message
