"""Usage queries over the hourly rollups: by tenant, model, and hour, day or the whole range."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing import rollups
from modelplex.billing.errors import InvalidInput, NotFound
from modelplex.billing.invoices import UsageTotal
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import day_of
from modelplex.billing.schemas import Record
from modelplex.billing.tables import Price, Tenant, UsageHourly
from modelplex.billing.tenants import find_tenant

Granularity = Literal["hour", "day", "total"]
_SUMS = ("requests", "aborted", "failed", "prompt_tokens", "cached_tokens", "completion_tokens")


class UsageBucket(Record):
    """Usage of one tenant and model in one hour, one day, or the whole range (bucket None)."""

    bucket: datetime | None
    tenant: str
    model: str
    requests: int
    aborted: int
    failed: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


def _ints(row: Any) -> dict[str, Any]:
    """SUM() is a Decimal on PostgreSQL and an int on SQLite: make it an int on both."""
    return {key: int(value) if key in _SUMS else value for key, value in row.items()}


def _sums() -> list[Any]:
    return [func.sum(getattr(UsageHourly, field)).label(field) for field in _SUMS]


async def usage_totals(
    session: AsyncSession, tenant_id: str, start: datetime, end: datetime
) -> list[UsageTotal]:
    """A tenant's usage in [start, end) by model and price (what invoices and budgets are made of)."""
    rows = await rollups.summed(session, start, end, ("model", "price_id"), filters={"tenant_id": tenant_id})
    return [UsageTotal(**row) for row in rows]


def fold(buckets: Iterable[UsageBucket], granularity: Granularity) -> list[UsageBucket]:
    """Hourly buckets merged into days or into one total per tenant and model; pure."""
    if granularity == "hour":
        return sorted(buckets, key=lambda b: (b.bucket, b.tenant, b.model))
    merged: dict[tuple[datetime | None, str, str], dict[str, Any]] = {}
    for row in buckets:
        when = day_of(row.bucket) if granularity == "day" and row.bucket is not None else None
        key = (when, row.tenant, row.model)
        into = merged.setdefault(key, {"bucket": when, "tenant": row.tenant, "model": row.model})
        for field in _SUMS:
            into[field] = into.get(field, 0) + getattr(row, field)
    return [UsageBucket.model_validate(merged[key]) for key in sorted(merged, key=_sort_key)]


def _sort_key(key: tuple[datetime | None, str, str]) -> tuple[str, str, str]:
    return (key[0].isoformat() if key[0] else "", key[1], key[2])


async def _check_model(session: AsyncSession, model: str) -> None:
    known = await session.scalar(
        select(func.count()).select_from(UsageHourly).where(UsageHourly.model == model)
    )
    priced = await session.scalar(select(func.count()).select_from(Price).where(Price.model == model))
    if not known and not priced:
        raise NotFound(f"no model named {model!r} has prices or usage", param="model")


async def _hourly_query(
    session: AsyncSession, tenant: str | None, model: str | None, start: datetime, end: datetime
) -> Select[Any]:
    query = (
        select(UsageHourly.hour.label("bucket"), Tenant.name.label("tenant"), UsageHourly.model, *_sums())
        .join(Tenant, Tenant.id == UsageHourly.tenant_id)
        .where(UsageHourly.hour >= start, UsageHourly.hour < end)
        .group_by(UsageHourly.hour, Tenant.name, UsageHourly.model)
    )
    if tenant is not None:
        query = query.where(UsageHourly.tenant_id == (await find_tenant(session, tenant)).id)
    if model is not None:
        await _check_model(session, model)
        query = query.where(UsageHourly.model == model)
    return query


async def usage_report(
    ledger: Ledger,
    start: datetime,
    end: datetime,
    *,
    tenant: str | None = None,
    model: str | None = None,
    granularity: Granularity = "total",
) -> list[UsageBucket]:
    """Usage in [start, end), optionally of one tenant and/or model, by hour, day or in total."""
    if end <= start:
        raise InvalidInput("the end must be after the start", param="end")
    async with ledger.sessions() as session:
        query = await _hourly_query(session, tenant, model, start, end)
        rows = (await session.execute(query)).mappings()
        hourly = [UsageBucket.model_validate(_ints(row)) for row in rows]
    return fold(hourly, granularity)


class DayUsage(Record):
    """Usage summed over tenants and models (or of the one filtered on) in one UTC day."""

    day: datetime
    requests: int = 0
    aborted: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0


async def daily_usage(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    tenant_id: str | None = None,
    model: str | None = None,
) -> list[DayUsage]:
    """Usage per UTC day in [start, end), over everyone or one tenant and/or model (days without
    usage are absent), oldest first."""
    wanted = {"tenant_id": tenant_id, "model": model}
    filters = {column: value for column, value in wanted.items() if value is not None}
    rows = await rollups.summed(session, start, end, (), filters=filters, by_day=True)
    return sorted((DayUsage.model_validate(row) for row in rows), key=lambda row: row.day)
