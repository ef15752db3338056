"""Pure parts of ingest: de-duplication, pricing of rows, hourly rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from modelplex.billing.contracts import Outcome, UsageEvent
from modelplex.billing.ingest import event_row, rollup_rows, unique_events
from modelplex.billing.pricing import PriceBook, PriceRecord

NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


def event(
    request_id: str, at: datetime = NOON, outcome: Outcome = Outcome.COMPLETED, model: str = "m"
) -> UsageEvent:
    return UsageEvent(
        request_id=request_id,
        tenant_id="t",
        key_id="k",
        model=model,
        deployment="d",
        replica="r",
        prompt_tokens=10,
        cached_tokens=2,
        completion_tokens=5,
        outcome=outcome,
        started_at=at,
        finished_at=at,
        duration_ms=1.0,
    )


BOOK = PriceBook(
    [
        PriceRecord(
            id=7,
            model="m",
            currency="USD",
            input_per_1m=Decimal(1),
            cached_input_per_1m=Decimal(1),
            output_per_1m=Decimal(1),
            effective_from=NOON,
            source="t",
            created_at=NOON,
        )
    ]
)


def test_unique_events_keeps_the_first_of_each_request_id() -> None:
    first, again, other = event("a"), event("a", at=NOON + timedelta(hours=1)), event("b")
    assert unique_events([first, again, other]) == [first, other]


def test_rows_carry_the_price_in_force_or_none() -> None:
    assert event_row(event("a"), BOOK)["price_id"] == 7
    assert event_row(event("b", at=NOON - timedelta(seconds=1)), BOOK)["price_id"] is None
    assert event_row(event("c", model="unpriced"), BOOK)["outcome"] == "completed"


def test_rollups_group_by_hour_and_count_outcomes_in_key_order() -> None:
    rows = [
        event_row(event("a", at=NOON + timedelta(hours=1)), BOOK),
        event_row(event("b", outcome=Outcome.ABORTED), BOOK),
        event_row(event("c", at=NOON + timedelta(minutes=30), outcome=Outcome.FAILED), BOOK),
        event_row(event("d", at=NOON - timedelta(hours=1)), BOOK),
    ]
    rolled = rollup_rows(rows)
    assert [
        (r["hour"], r["price_id"], r["requests"], r["aborted"], r["failed"], r["prompt_tokens"])
        for r in rolled
    ] == [
        (NOON - timedelta(hours=1), 0, 1, 0, 0, 10),
        (NOON, 7, 2, 1, 1, 20),
        (NOON + timedelta(hours=1), 7, 1, 0, 0, 10),
    ]
