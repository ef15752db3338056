"""Sums over the usage rollups for any whole-hour range: whole UTC days from usage_daily, the hours
at either edge from usage_hourly. A month is then ~30 rows per tenant, model and price, not ~720.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.histograms import HISTOGRAM_COLUMNS
from modelplex.billing.periods import day_of
from modelplex.billing.tables import UsageDaily, UsageHourly

COUNTS = ("requests", "aborted", "failed", "prompt_tokens", "cached_tokens", "completion_tokens")
DAY = timedelta(days=1)
Span = tuple[str, datetime, datetime]  # ("daily" | "hourly", start, end)


def spans(start: datetime, end: datetime) -> list[Span]:
    """[start, end) as the whole days within it (daily rows) and the hours outside them (hourly rows)."""
    first_day = day_of(start) if day_of(start) == start else day_of(start) + DAY
    last_day = day_of(end)
    if first_day >= last_day:
        return [("hourly", start, end)] if start < end else []
    parts: list[Span] = []
    if start < first_day:
        parts.append(("hourly", start, first_day))
    parts.append(("daily", first_day, last_day))
    if last_day < end:
        parts.append(("hourly", last_day, end))
    return parts


def _table(kind: str) -> tuple[Table, Any]:
    if kind == "daily":
        daily: Table = UsageDaily.__table__  # type: ignore[assignment]
        return daily, daily.c.day
    hourly: Table = UsageHourly.__table__  # type: ignore[assignment]
    return hourly, hourly.c.hour


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
    for kind, since, until in spans(start, end):
        table, moment = _table(kind)
        groups = [table.c[key] for key in keys] + ([moment] if by_day else [])
        query = (
            select(*groups, *(func.sum(table.c[name]).label(name) for name in fields))
            .where(moment >= since, moment < until)
            .group_by(*groups)
        )
        for column, value in (filters or {}).items():
            query = query.where(table.c[column] == value)
        for row in (await session.execute(query)).all():
            key_values = tuple(row[: len(keys)])
            day = day_of(row[len(keys)]) if by_day else None
            into = merged.setdefault((*key_values, day), dict(zip(keys, key_values, strict=True)))
            if by_day:
                into["day"] = day
            for index, name in enumerate(fields, start=len(groups)):
                into[name] = into.get(name, 0) + int(row[index] or 0)
    return list(merged.values())
