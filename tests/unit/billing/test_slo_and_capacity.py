"""SLO attainment and when the capacity ledger closes an interval: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from modelplex.billing.capacity import CONTINUOUS, end_of
from modelplex.billing.economics import Served
from modelplex.billing.histograms import histogram
from modelplex.billing.slo import Objectives, attainment
from modelplex.billing.tables import ReplicaInterval

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)


def test_attainment_judges_each_stated_objective() -> None:
    fast = Served(requests=200, failed=1, ttft=histogram([40] * 190 + [400] * 10))
    slow = Served(requests=100, failed=0, ttft=histogram([900] * 100))
    objectives = Objectives(ttft_p95_ms=2000, availability_percent=Decimal("99.5"))
    result = attainment("t1", "acme", START, END, {"m1": fast, "m2": slow}, objectives)
    assert result.overall.requests == 300
    assert result.overall.availability_percent == Decimal("99.6667")  # 299 of 300 did not fail
    assert result.overall.ttft_p95_ms == Decimal(925)  # rank 285 of 300: 85 of the 100 in (500, 1000]
    assert (result.ttft_met, result.availability_met, result.met) == (True, True, True)
    assert [(q.model, q.error_rate) for q in result.models] == [("m1", Decimal("0.005")), ("m2", Decimal(0))]

    strict = Objectives(ttft_p95_ms=500, availability_percent=Decimal("99.9"))
    missed = attainment("t1", "acme", START, END, {"m1": fast, "m2": slow}, strict)
    assert (missed.ttft_met, missed.availability_met, missed.met) == (False, False, False)


def test_objectives_without_data_or_unstated_are_not_judged() -> None:
    idle = attainment("t1", "acme", START, END, {}, Objectives(ttft_p95_ms=100))
    assert (idle.ttft_met, idle.availability_met, idle.met) == (None, None, None)
    busy = attainment("t1", "acme", START, END, {"m1": Served(requests=5, failed=5)}, Objectives())
    assert busy.met is None
    assert busy.overall.availability_percent == Decimal(0)


def _open(started: datetime, last_seen: datetime) -> ReplicaInterval:
    return ReplicaInterval(started_at=started, last_seen_at=last_seen)


def test_an_interval_ends_at_the_report_when_watched_and_at_last_sight_when_not() -> None:
    started, seen = START, START + timedelta(hours=1)
    watched = seen + CONTINUOUS / 2
    assert end_of(_open(started, seen), watched, previous_report=seen) == watched
    after_restart = seen + timedelta(hours=5)
    assert end_of(_open(started, seen), after_restart, previous_report=seen) == seen
    assert end_of(_open(started, seen), after_restart, previous_report=None) == seen
    # an interval never ends before it started, whatever the clocks say
    assert end_of(_open(started, started - timedelta(minutes=1)), started, None) == started
