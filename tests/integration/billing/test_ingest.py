"""Usage ingest on both databases: idempotent by request_id, rollups exact, safe under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from modelplex.billing.contracts import Outcome
from modelplex.billing.histograms import HISTOGRAM_COLUMNS
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import Ledger
from modelplex.billing.rollups import COUNTS
from modelplex.billing.tables import UsageDaily, UsageEventRow, UsageHourly, UsageMonthly
from mpxtest.ledger import usage_event

pytestmark = pytest.mark.anyio
NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


async def _counts(ledger: Ledger) -> tuple[int, int, int, int]:
    """(events, prompt tokens in events, requests in rollups, prompt tokens in rollups)."""
    async with ledger.sessions() as session:
        events = (await session.execute(select(func.count(), func.sum(UsageEventRow.prompt_tokens)))).one()
        rolled = (
            await session.execute(select(func.sum(UsageHourly.requests), func.sum(UsageHourly.prompt_tokens)))
        ).one()
    return int(events[0]), int(events[1] or 0), int(rolled[0] or 0), int(rolled[1] or 0)


async def test_duplicate_request_ids_are_ignored(ledger: Ledger) -> None:
    sink = LedgerSink(ledger)
    batch = [usage_event(f"r{i}", prompt=100 + i) for i in range(5)]
    assert await sink.ingest([*batch, batch[0]]) == 5  # a duplicate within the batch
    assert await sink.ingest(batch) == 0  # the journal replays the batch
    assert await sink.ingest([*batch[3:], usage_event("r5", prompt=105)]) == 1
    assert await _counts(ledger) == (6, 615, 6, 615)


async def test_a_replayed_id_keeps_the_first_version(ledger: Ledger) -> None:
    sink = LedgerSink(ledger)
    await sink.ingest([usage_event("r1", prompt=100)])
    assert await sink.ingest([usage_event("r1", prompt=999)]) == 0
    assert await _counts(ledger) == (1, 100, 1, 100)


async def test_empty_batch_writes_nothing(ledger: Ledger) -> None:
    assert await LedgerSink(ledger).ingest([]) == 0
    assert await _counts(ledger) == (0, 0, 0, 0)


async def test_concurrent_overlapping_batches_count_each_request_once(ledger: Ledger) -> None:
    sink = LedgerSink(ledger)
    events = [usage_event(f"r{i}", at=NOON + timedelta(minutes=i), prompt=10) for i in range(300)]
    batches = [events[start : start + 150] for start in range(0, 300, 50)]  # every event in up to 3 batches
    new = await asyncio.gather(*(sink.ingest(batch) for batch in batches))
    assert sum(new) == 300
    assert await _counts(ledger) == (300, 3000, 300, 3000)


async def test_rollups_sum_events_by_tenant_model_and_hour(ledger: Ledger) -> None:
    await LedgerSink(ledger).ingest(
        [
            usage_event("a", at=NOON, prompt=10, cached=4, completion=1),
            usage_event(
                "b", at=NOON + timedelta(minutes=59), prompt=20, completion=2, outcome=Outcome.ABORTED
            ),
            usage_event("c", at=NOON + timedelta(hours=1), prompt=30, completion=3, outcome=Outcome.FAILED),
            usage_event("d", at=NOON, model="m2", prompt=40, completion=4),
            usage_event("e", at=NOON, tenant_id="tnt_b", prompt=50, completion=5),
        ]
    )
    query = select(
        UsageHourly.tenant_id,
        UsageHourly.model,
        UsageHourly.hour,
        UsageHourly.requests,
        UsageHourly.aborted,
        UsageHourly.failed,
        UsageHourly.prompt_tokens,
        UsageHourly.cached_tokens,
        UsageHourly.completion_tokens,
    ).order_by(UsageHourly.tenant_id, UsageHourly.model, UsageHourly.hour)
    async with ledger.sessions() as session:
        rows = [tuple(row) for row in (await session.execute(query)).all()]
    one_pm = NOON + timedelta(hours=1)
    assert rows == [
        ("tnt_a", "m1", NOON, 2, 1, 0, 30, 4, 3),
        ("tnt_a", "m1", one_pm, 1, 0, 1, 30, 0, 3),
        ("tnt_a", "m2", NOON, 1, 0, 0, 40, 0, 4),
        ("tnt_b", "m1", NOON, 1, 0, 0, 50, 0, 5),
    ]


async def test_events_keep_what_the_gateway_metered(ledger: Ledger) -> None:
    event = usage_event("r1", at=NOON, prompt=10, cached=3, completion=7, outcome=Outcome.ABORTED)
    await LedgerSink(ledger).ingest([event])
    async with ledger.sessions() as session:
        row = (await session.execute(select(UsageEventRow))).scalar_one()
    assert (row.tenant_id, row.key_id, row.model, row.deployment, row.replica) == (
        "tnt_a",
        "key_a",
        "m1",
        "default/m1",
        "m1-0",
    )
    assert (row.prompt_tokens, row.cached_tokens, row.completion_tokens, row.outcome) == (10, 3, 7, "aborted")
    assert (row.started_at, row.finished_at) == (NOON, NOON + timedelta(seconds=2))
    assert (row.ttft_ms, row.duration_ms) == (120.0, 2000.0)


TTFT_UNDER_250 = "ttft_le_250"  # a histogram column (added to the mapped classes at import)


async def test_daily_rollups_are_the_hourly_ones_summed_per_day(ledger: Ledger) -> None:
    start = datetime(2026, 3, 9, 22, 30, tzinfo=UTC)
    events = [
        usage_event(
            f"d{index}", at=start + timedelta(minutes=37 * index), prompt=100 + index, completion=index
        )
        for index in range(200)
    ]
    sink = LedgerSink(ledger)
    await sink.ingest(events[:120])
    await sink.ingest(events[80:])  # overlapping replay: counted once, in both rollups

    async with ledger.sessions() as session:
        hourly = (await session.execute(select(UsageHourly))).scalars().all()
        daily = (await session.execute(select(UsageDaily))).scalars().all()
    by_day: dict[datetime, tuple[int, int, int]] = {}
    for row in hourly:
        day = row.hour.replace(hour=0)
        requests, prompt, ttft = by_day.get(day, (0, 0, 0))
        by_day[day] = (
            requests + row.requests,
            prompt + row.prompt_tokens,
            ttft + getattr(row, TTFT_UNDER_250),
        )
    assert {
        row.day: (row.requests, row.prompt_tokens, getattr(row, TTFT_UNDER_250)) for row in daily
    } == by_day
    assert sum(row.requests for row in daily) == 200
    assert len(daily) == 7  # 200 x 37 min from 22:30 on 9 March spans 6 days and a bit


def _sums(row: object) -> tuple[int, ...]:
    return tuple(getattr(row, name) for name in (*COUNTS, *HISTOGRAM_COLUMNS))


async def test_monthly_rollups_are_the_daily_ones_summed_per_month_replays_included(ledger: Ledger) -> None:
    start = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)
    events = [
        usage_event(
            f"m{index}",
            at=start + timedelta(hours=7 * index),
            tenant_id=("tnt_a", "tnt_b")[index % 2],
            prompt=100 + index,
            completion=index,
            outcome=(Outcome.COMPLETED, Outcome.FAILED, Outcome.ABORTED)[index % 3],
        )
        for index in range(200)
    ]
    sink = LedgerSink(ledger)
    await sink.ingest([*events[:120], events[5], events[119]])  # duplicates within a batch
    await sink.ingest(events[80:])  # an overlapping replay across the month boundary
    await sink.ingest(events[100:140])  # and a replay of events already counted

    async with ledger.sessions() as session:
        daily = (await session.execute(select(UsageDaily))).scalars().all()
        monthly = (await session.execute(select(UsageMonthly))).scalars().all()
    by_month: dict[tuple[str, str, int, datetime], list[int]] = {}
    for row in daily:
        key = (row.tenant_id, row.model, row.price_id, row.day.replace(day=1))
        into = by_month.setdefault(key, [0] * len(_sums(row)))
        by_month[key] = [a + b for a, b in zip(into, _sums(row), strict=True)]
    assert {
        (row.tenant_id, row.model, row.price_id, row.month): list(_sums(row)) for row in monthly
    } == by_month
    assert {row.month for row in monthly} == {datetime(2026, month, 1, tzinfo=UTC) for month in (3, 4, 5)}
    assert sum(row.requests for row in monthly) == 200
    assert sum(row.prompt_tokens for row in monthly) == sum(100 + index for index in range(200))
    assert sum(row.failed for row in monthly) == len(range(1, 200, 3))
