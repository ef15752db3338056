"""The console's pure parts: URL filters, chart payloads, replica steps, redirects, number formats,
and the vendored chart library's bytes against the hashes it was vendored with."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from modelplex.billing.capacity import IntervalRecord
from modelplex.billing.console import charts
from modelplex.billing.console.data import replica_steps
from modelplex.billing.console.filters import next_month, previous_month, read_filters
from modelplex.billing.console.render import money, rate
from modelplex.billing.console.web import STATIC, safe_next, static_files
from modelplex.billing.errors import InvalidInput
from modelplex.billing.periods import parse_period
from modelplex.billing.rollups import DAILY, spans
from modelplex.billing.usage import DayUsage

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_filters_default_to_this_month_and_name_what_is_wrong() -> None:
    assert read_filters([], NOW).period.label == "2026-03"
    chosen = read_filters([("period", "2025-12"), ("tenant", "acme")], NOW)
    assert (chosen.period.label, chosen.tenant) == ("2025-12", "acme")
    assert chosen.query(tenant=None) == "period=2025-12"
    for params, named in (
        ([("period", "2025-13")], "period"),
        ([("tenant", "Not A Name")], "tenant"),
        ([("sort", "x")], "sort"),
        ([("period", "2025-01"), ("period", "2025-02")], "period"),
    ):
        with pytest.raises(InvalidInput) as refused:
            read_filters(params, NOW)
        assert refused.value.param == named


def test_months_step_across_years() -> None:
    assert previous_month(parse_period("2026-01")) == "2025-12"
    assert next_month(parse_period("2025-12")) == "2026-01"


def test_a_usage_chart_has_every_begun_day_with_gaps_as_zeros() -> None:
    days = [DayUsage(day=T0 + timedelta(days=2), prompt_tokens=5, completion_tokens=7)]
    payload = charts.usage_chart(days, parse_period("2026-03"), NOW)
    assert len(payload["x"]) == 10  # March 1..10
    assert payload["x"][0] == int(T0.timestamp())
    prompt, completion = payload["series"]
    assert prompt["values"][2] == 5
    assert completion["values"][2] == 7
    assert sum(prompt["values"]) == 5


def _interval(start: datetime, end: datetime | None, replica: str = "r0") -> IntervalRecord:
    return IntervalRecord(
        source="kubernetes",
        namespace="ns",
        deployment="d",
        model="m",
        replica=replica,
        gpus=1,
        gpu_product="p",
        started_at=start,
        last_seen_at=end or NOW,
        ended_at=end,
    )


def test_replica_steps_count_overlapping_intervals_within_the_range() -> None:
    hour = timedelta(hours=1)
    intervals = [
        _interval(T0 - hour, T0 + 2 * hour, "r0"),  # began before the range: counted from its start
        _interval(T0 + hour, None, "r1"),  # still open
        _interval(T0 + 5 * hour, T0 + 5 * hour, "r2"),  # empty: ignored
    ]
    assert replica_steps(intervals, T0, T0 + 4 * hour) == [(T0, 1), (T0 + hour, 2), (T0 + 2 * hour, 1)]
    assert replica_steps([], T0, T0 + hour) == [(T0, 0)]


def test_the_replicas_chart_marks_the_autoscalers_decisions_where_they_were_made() -> None:
    hour = timedelta(hours=1)
    steps = [(T0, 1), (T0 + 2 * hour, 3)]
    plain = charts.replicas_chart(steps, T0 + 4 * hour)
    assert plain["x"] == [int((T0 + n * hour).timestamp()) for n in (0, 2, 4)]
    assert [series["label"] for series in plain["series"]] == ["replicas"]
    assert plain["series"][0]["values"] == [1, 3, 3]
    marked = charts.replicas_chart(
        steps, T0 + 4 * hour, [(T0 + hour, 3), (T0 + 3 * hour, 2), (T0 + 5 * hour, 1)]
    )
    assert marked["x"] == [int((T0 + n * hour).timestamp()) for n in (0, 1, 2, 3, 4)]
    replicas, asked = marked["series"]
    assert replicas["values"] == [1, 1, 3, 3, 3]  # serving changes when replicas are Ready, after a decision
    assert (asked["label"], asked["marks"], asked["values"]) == (
        "autoscaler asked for",
        True,
        [None, 3, None, 2, None],
    )
    assert charts.replicas_chart([], T0 + hour)["x"] == []


def test_sign_in_only_returns_into_the_console() -> None:
    assert safe_next("/admin/tenants?period=2026-01") == "/admin/tenants?period=2026-01"
    for target in (
        "https://evil.example/",
        "//evil.example/admin/",
        "/admin/\\evil",
        "/elsewhere",
        "/admin/\n",
    ):
        assert safe_next(target) is None, target


def test_money_is_never_rounded_only_padded_to_the_minor_unit() -> None:
    assert money(Decimal(0), "USD") == "0.00 USD"
    assert money(Decimal("1234.5"), "USD") == "1,234.50 USD"
    assert money(Decimal("0.0033405"), "USD") == "0.0033405 USD"
    assert money(Decimal(12), "JPY") == "12 JPY"
    assert rate(Decimal("218.593214"), "USD") == "218.5932 USD"


def test_the_vendored_chart_library_is_the_pinned_release_with_its_licence() -> None:
    vendored = STATIC / "vendor" / "uplot"
    source = json.loads((vendored / "SOURCE.json").read_text())
    assert source["integrity"].startswith("sha512-")
    assert set(source["files"]) == {"LICENSE", "uPlot.iife.min.js", "uPlot.min.css"}
    for name, entry in source["files"].items():
        assert hashlib.sha256((vendored / name).read_bytes()).hexdigest() == entry["sha256"], name
    assert "MIT License" in (vendored / "LICENSE").read_text()
    served = static_files()
    assert "vendor/uplot/uPlot.iife.min.js" in served
    assert "vendor/uplot/SOURCE.json" not in served


def test_a_range_reads_whole_months_then_whole_days_from_their_rollups_and_its_edges_hourly() -> None:
    day, hour = timedelta(days=1), timedelta(hours=1)
    month = parse_period("2026-03")
    assert spans(month.start, month.end) == [("monthly", month.start, month.end)]
    assert spans(month.start, month.end, (DAILY,)) == [("daily", month.start, month.end)]
    assert spans(T0 + 22 * hour, T0 + 2 * day + 3 * hour) == [
        ("hourly", T0 + 22 * hour, T0 + day),
        ("daily", T0 + day, T0 + 2 * day),
        ("hourly", T0 + 2 * day, T0 + 2 * day + 3 * hour),
    ]
    april, june = parse_period("2026-04").start, parse_period("2026-06").start
    since, until = month.end - day - 5 * hour, june + 2 * day + hour
    assert spans(since, until) == [
        ("hourly", since, month.end - day),
        ("daily", month.end - day, april),
        ("monthly", april, june),
        ("daily", june, june + 2 * day),
        ("hourly", june + 2 * day, until),
    ]
    assert spans(T0 + hour, T0 + 5 * hour) == [("hourly", T0 + hour, T0 + 5 * hour)]
    assert spans(T0, T0) == []
