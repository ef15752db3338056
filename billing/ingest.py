"""Usage ingest: the ledger's UsageSink. One transaction per batch; duplicate request_ids are ignored.

Each batch inserts the new events (ON CONFLICT DO NOTHING / INSERT OR IGNORE), reads back which
request_ids were actually new, and adds only those to the hourly, daily and monthly rollups in the same
transaction, so an event is counted once however often the gateway's journal replays it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.busy import busy_rows
from modelplex.billing.contracts import Outcome, UsageEvent
from modelplex.billing.histograms import BUCKET_NAMES, HISTOGRAM_COLUMNS, bucket_of, column_name
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import as_utc, day_of, hour_of, month_start
from modelplex.billing.price_history import price_book
from modelplex.billing.pricing import PriceBook
from modelplex.billing.tables import (
    UNPRICED,
    ReplicaBusyHourly,
    UsageDaily,
    UsageEventRow,
    UsageHourly,
    UsageMonthly,
)

_log = logging.getLogger(__name__)
_ROLLUP_KEY = ("tenant_id", "model", "price_id", "hour")
_DAILY_KEY = ("tenant_id", "model", "price_id", "day")
_MONTHLY_KEY = ("tenant_id", "model", "price_id", "month")
_ROLLUP_SUMS = (
    "requests",
    "aborted",
    "failed",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    *HISTOGRAM_COLUMNS,
)


def unique_events(events: Iterable[UsageEvent]) -> list[UsageEvent]:
    """The first event of each request_id, in order."""
    seen: set[str] = set()
    kept = []
    for event in events:
        if event.request_id not in seen:
            seen.add(event.request_id)
            kept.append(event)
    return kept


def event_row(event: UsageEvent, book: PriceBook) -> dict[str, Any]:
    """The usage_events row for `event`, priced at the price in force when it started."""
    started = as_utc(event.started_at)
    price = book.in_force(event.model, started)
    row = event.model_dump()
    row.update(started_at=started, finished_at=as_utc(event.finished_at), price_id=price and price.id)
    row["outcome"] = event.outcome.value
    return row


def rollup_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hourly sums of event rows, sorted by key so concurrent batches lock rollups in one order."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["tenant_id"], row["model"], row["price_id"] or UNPRICED, hour_of(row["started_at"]))
        total = sums.get(key)
        if total is None:
            total = sums[key] = dict(zip(_ROLLUP_KEY, key, strict=True)) | dict.fromkeys(_ROLLUP_SUMS, 0)
        total["requests"] += 1
        total["aborted"] += row["outcome"] == Outcome.ABORTED.value
        total["failed"] += row["outcome"] == Outcome.FAILED.value
        for field in ("prompt_tokens", "cached_tokens", "completion_tokens"):
            total[field] += row[field]
        if row["ttft_ms"] is not None:
            total[column_name("ttft", BUCKET_NAMES[bucket_of(row["ttft_ms"])])] += 1
        total[column_name("duration", BUCKET_NAMES[bucket_of(row["duration_ms"])])] += 1
    return [sums[key] for key in sorted(sums)]


def _insert(dialect: str, table: Any) -> Insert:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement: Insert = module.insert(table)
    return statement


async def _insert_new(session: AsyncSession, dialect: str, rows: list[dict[str, Any]]) -> set[str]:
    table = UsageEventRow.__table__
    statement = (
        _insert(dialect, table)
        .on_conflict_do_nothing(index_elements=["request_id"])  # type: ignore[attr-defined]
        .returning(table.c.request_id)
    )
    # Core, not the ORM: bulk ORM inserts spend more time in bookkeeping than in the database.
    connection = await session.connection()
    result = await connection.execute(statement, rows)
    return set(result.scalars().all())


def regrouped(
    rows: Iterable[dict[str, Any]], at: str, into: str, bucket: Callable[[datetime], datetime]
) -> list[dict[str, Any]]:
    """Rollup rows (time bucket in column `at`) summed per coarser `bucket` of that time, in column
    `into`; sorted by key (lock order, as for the hourly ones)."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["tenant_id"], row["model"], row["price_id"], bucket(row[at]))
        total = sums.get(key)
        if total is None:
            names = ("tenant_id", "model", "price_id", into)
            total = sums[key] = dict(zip(names, key, strict=True)) | dict.fromkeys(_ROLLUP_SUMS, 0)
        for field in _ROLLUP_SUMS:
            total[field] += row[field]
    return [sums[key] for key in sorted(sums)]


def daily_rows(hourly: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hourly rollup rows summed per UTC day."""
    return regrouped(hourly, "hour", "day", day_of)


def monthly_rows(daily: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Daily rollup rows summed per UTC calendar month."""
    return regrouped(daily, "day", "month", month_start)


async def _upsert_sums(
    session: AsyncSession, dialect: str, table: Any, key: Sequence[str], rows: list[Any]
) -> None:
    statement: Any = _insert(dialect, table)
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={field: table.c[field] + statement.excluded[field] for field in _ROLLUP_SUMS},
    )
    connection = await session.connection()
    await connection.execute(statement, rows)


async def _add_rollups(session: AsyncSession, dialect: str, hourly: list[dict[str, Any]]) -> None:
    await _upsert_sums(session, dialect, UsageHourly.__table__, _ROLLUP_KEY, hourly)
    daily = daily_rows(hourly)
    await _upsert_sums(session, dialect, UsageDaily.__table__, _DAILY_KEY, daily)
    await _upsert_sums(session, dialect, UsageMonthly.__table__, _MONTHLY_KEY, monthly_rows(daily))


async def _mark_busy(session: AsyncSession, dialect: str, rows: list[dict[str, Any]]) -> None:
    busy = busy_rows(rows)
    if not busy:
        return
    statement: Any = _insert(dialect, ReplicaBusyHourly.__table__)
    column = ReplicaBusyHourly.__table__.c.busy_minutes
    statement = statement.on_conflict_do_update(
        index_elements=["model", "replica", "hour"],
        set_={"busy_minutes": column.op("|")(statement.excluded.busy_minutes)},
    )
    connection = await session.connection()
    await connection.execute(statement, busy)


class LedgerSink:
    """The ledger's `UsageSink`: the gateway's journal hands it batches of metered requests."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def ingest(self, events: Sequence[UsageEvent]) -> int:
        batch = unique_events(events)
        if not batch:
            return 0
        dialect = self._ledger.dialect
        async with self._ledger.transaction() as session:
            book = await price_book(session, {event.model for event in batch})
            rows = [event_row(event, book) for event in batch]
            new_ids = await _insert_new(session, dialect, rows)
            if new_ids:
                new_rows = [r for r in rows if r["request_id"] in new_ids]
                await _add_rollups(session, dialect, rollup_rows(new_rows))
                await _mark_busy(session, dialect, new_rows)
        _log.debug("Ingested usage batch events=%d new=%d", len(events), len(new_ids))
        return len(new_ids)
