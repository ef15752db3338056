"""Sums over the usage rollups for any whole-hour range: whole UTC calendar months from usage_monthly,
whole days around them from usage_daily, the hours at either edge from usage_hourly. A month is then
one row per tenant, model and price, not ~720.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Table, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.histograms import HISTOGRAM_COLUMNS
from modelplex.billing.periods import day_of, month_of, month_start
from modelplex.billing.tables import UsageDaily, UsageHourly, UsageMonthly

COUNTS = ("requests", "aborted", "failed", "prompt_tokens", "cached_tokens", "completion_tokens")
DAY = timedelta(days=1)
Span = tuple[str, datetime, datetime]  # ("monthly" | "daily" | "hourly", start, end)
# Coarsest first: (rollup kind, the start of the bucket holding a moment, the start of the next bucket).
Level = tuple[str, Callable[[datetime], datetime], Callable[[datetime], datetime]]
MONTHLY: Level = ("monthly", month_start, lambda start: month_of(start).end)
DAILY: Level = ("daily", day_of, lambda start: start + DAY)


def spans(start: datetime, end: datetime, levels: Sequence[Level] = (MONTHLY, DAILY)) -> list[Span]:
    """[start, end) as the whole buckets of the coarsest level within it and, on either side, the
    same split by the finer levels, down to hours (hourly rows)."""
    if start >= end:
        return []
    if not levels:
        return [("hourly", start, end)]
    (kind, floor, following), finer = levels[0], levels[1:]
    first = start if floor(start) == start else following(floor(start))
    last = floor(end)
    if first >= last:
        return spans(start, end, finer)
    return [*spans(start, first, finer), (kind, first, last), *spans(last, end, finer)]


def _table(kind: str) -> tuple[Table, Any]:
    mapped: dict[str, tuple[Any, str]] = {
        "monthly": (UsageMonthly, "month"),
        "daily": (UsageDaily, "day"),
        "hourly": (UsageHourly, "hour"),
    }
    rollup, moment = mapped[kind]
    table: Table = rollup.__table__
    return table, table.c[moment]


async def summed(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    keys: Sequence[str],
    *,
    filters: dict[str, str] | None = None,
    by_day: bool = False,
    histograms: bool = False,
) -> list[dict[str, Any]]:
    """Sums of the counts (and the latency histograms) over [start, end), grouped by `keys` (rollup
    columns) and, with `by_day`, by UTC day (as "day"); integers on both databases."""
    fields = (*COUNTS, *HISTOGRAM_COLUMNS) if histograms else COUNTS
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for kind, since, until in spans(start, end, (DAILY,) if by_day else (MONTHLY, DAILY)):
        table, moment = _table(kind)
        groups = [table.c[key] for key in keys] + ([moment] if by_day else [])
        # COALESCE and a cast: integers straight from the driver on both databases (PostgreSQL's SUM of
        # a BIGINT is NUMERIC), so thousands of rows need no conversion here.
        totals = [cast(func.coalesce(func.sum(table.c[name]), 0), BigInteger).label(name) for name in fields]
        query = select(*groups, *totals).where(moment >= since, moment < until).group_by(*groups)
        for column, value in (filters or {}).items():
            query = query.where(table.c[column] == value)
        for row in (await session.execute(query)).all():
            key_values = tuple(row[: len(keys)])
            day = day_of(row[len(keys)]) if by_day else None
            sums = row[len(groups) :]
            into = merged.get((*key_values, day))
            if into is None:
                into = merged[(*key_values, day)] = dict(zip(keys, key_values, strict=True))
                if by_day:
                    into["day"] = day
                into.update(zip(fields, sums, strict=True))
            else:
                for name, value in zip(fields, sums, strict=True):
                    into[name] += value
    return list(merged.values())
