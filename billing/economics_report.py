"""Economics and SLO reports read from the database: hourly rollups, intervals, costs, prices, plans.

Only rollups and the (few) interval and cost rows are read, never raw usage events; the arithmetic
is in `economics` and `slo`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing import capacity, rollups
from modelplex.billing.capacity import IntervalRecord
from modelplex.billing.cost_book import CostBook
from modelplex.billing.currencies import validate_currency
from modelplex.billing.economics import (
    Economics,
    Served,
    add_busy,
    add_served,
    gpu_spend,
    model_revenue,
    report_rows,
)
from modelplex.billing.errors import InvalidInput
from modelplex.billing.gpu_costs import cost_book
from modelplex.billing.histograms import empty, from_row
from modelplex.billing.invoices import Invoice, UsageTotal, compute_invoice
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import Period, hour_of, month_of, parse_instant, parse_period, utcnow
from modelplex.billing.price_history import price_book
from modelplex.billing.schemas import Record
from modelplex.billing.slo import Attainment, Objectives, attainment
from modelplex.billing.tables import Plan, ReplicaBusyHourly, Tenant
from modelplex.billing.tenants import availability_percent, find_tenant

_COUNTS = ("requests", "aborted", "failed", "prompt_tokens", "cached_tokens", "completion_tokens")


def report_range(period: str | None, start: str | None, end: str | None) -> Period:
    """A calendar month (`period`), or [start, end) on whole UTC hours (what rollups resolve);
    default: the current month."""
    if period is not None:
        if start is not None or end is not None:
            raise InvalidInput("give a period or a start and end, not both", param="period")
        return parse_period(period)
    month = month_of(utcnow())
    since = month.start if start is None else parse_instant(start, param="start")
    until = month.end if end is None else parse_instant(end, param="end")
    for name, moment in (("start", since), ("end", until)):
        if hour_of(moment) != moment:
            raise InvalidInput(f"{moment.isoformat()} is not on a whole UTC hour", param=name)
    if until <= since:
        raise InvalidInput("the end must be after the start", param="end")
    return Period(label=f"{since.isoformat()}/{until.isoformat()}", start=since, end=until)


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """One tenant's rollups for one model and price over a range (a dataclass: pages build thousands)."""

    tenant_id: str
    total: UsageTotal
    ttft: list[int]
    duration: list[int]

    def served(self) -> Served:
        total = self.total
        return Served(
            requests=total.requests,
            aborted=total.aborted,
            failed=total.failed,
            prompt_tokens=total.prompt_tokens,
            cached_tokens=total.cached_tokens,
            completion_tokens=total.completion_tokens,
            ttft=list(self.ttft),
            duration=list(self.duration),
        )


async def usage_groups(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    tenant_id: str | None = None,
    *,
    latency: bool = True,
) -> list[UsageGroup]:
    """Rollups in [start, end) summed per tenant, model and price; without `latency`, the TTFT and
    duration histograms are not read and stay empty (for figures that show no latency)."""
    filters = {} if tenant_id is None else {"tenant_id": tenant_id}
    rows = await rollups.summed(
        session, start, end, ("tenant_id", "model", "price_id"), filters=filters, histograms=latency
    )
    return [
        UsageGroup(
            tenant_id=row["tenant_id"],
            total=UsageTotal(
                model=row["model"], price_id=row["price_id"], **{name: row[name] for name in _COUNTS}
            ),
            ttft=from_row(row, "ttft") if latency else empty(),
            duration=from_row(row, "duration") if latency else empty(),
        )
        for row in sorted(rows, key=lambda row: (row["tenant_id"], row["model"], row["price_id"]))
    ]


async def invoices_of(session: AsyncSession, period: Period, groups: Sequence[UsageGroup]) -> list[Invoice]:
    """Every tenant's invoice over `period`, computed exactly as `modelplex invoice` does."""
    book = await price_book(session, {group.total.model for group in groups})
    by_tenant: dict[str, list[UsageTotal]] = {}
    for group in groups:
        by_tenant.setdefault(group.tenant_id, []).append(group.total)
    names = dict((await session.execute(select(Tenant.id, Tenant.name))).all())
    return [
        compute_invoice(tenant_id, names.get(tenant_id, tenant_id), period, usage, book)
        for tenant_id, usage in sorted(by_tenant.items())
    ]


class EconomicsReport(Record):
    start: datetime
    end: datetime
    as_of: datetime
    currency: str
    models: list[Economics]
    total: Economics


async def _busy(session: AsyncSession, start: datetime, end: datetime) -> list[tuple[str, str, int]]:
    table = ReplicaBusyHourly
    query = select(table.model, table.replica, table.busy_minutes).where(
        table.hour >= start, table.hour < end
    )
    return [(model, replica, int(bits)) for model, replica, bits in (await session.execute(query)).all()]


@dataclass(frozen=True)
class PeriodBooks:
    """Everything a period's economics are derived from, read in one session."""

    period: Period
    groups: list[UsageGroup]
    invoices: list[Invoice]
    intervals: list[IntervalRecord]
    costs: CostBook
    busy: list[tuple[str, str, int]]


async def period_books(session: AsyncSession, period: Period, *, latency: bool = True) -> PeriodBooks:
    """`latency`: as in `usage_groups` (without it the economics' TTFT figures are empty)."""
    intervals = await capacity.intervals_between(session, period.start, period.end)
    groups = await usage_groups(session, period.start, period.end, latency=latency)
    return PeriodBooks(
        period=period,
        groups=groups,
        invoices=await invoices_of(session, period, groups),
        intervals=intervals,
        costs=await cost_book(session, {interval.gpu_product for interval in intervals}),
        busy=await _busy(session, period.start, period.end),
    )


def economics_of(books: PeriodBooks, currency: str, as_of: datetime) -> EconomicsReport:
    """Per-model economics of `books`; open intervals count up to `as_of`; pure."""
    start, end = books.period.start, books.period.end
    spend = gpu_spend(books.intervals, books.costs, currency, start, end, as_of)
    add_busy(spend, books.busy, {(i.model, i.replica): i.gpus for i in books.intervals})
    served: dict[str, Served] = {}
    for group in books.groups:
        add_served(served, group.total.model, group.served())
    rows, total = report_rows(currency, spend, served, model_revenue(books.invoices, currency))
    return EconomicsReport(start=start, end=end, as_of=as_of, currency=currency, models=rows, total=total)


async def economics_report(
    ledger: Ledger, period: Period, currency: str = "USD", as_of: datetime | None = None
) -> EconomicsReport:
    """Per-model economics over `period`; open intervals count up to `as_of` (default: now)."""
    code, now = validate_currency(currency), as_of or utcnow()
    async with ledger.sessions() as session:
        books = await period_books(session, period)
    return economics_of(books, code, now)


def objectives_of(plan: Plan | None) -> Objectives:
    if plan is None:
        return Objectives()
    return Objectives(
        ttft_p95_ms=plan.slo_ttft_p95_ms, availability_percent=availability_percent(plan.slo_availability_ppm)
    )


async def slo_report(ledger: Ledger, period: Period, tenant: str | None = None) -> list[Attainment]:
    """SLO attainment of every tenant (or one) over `period`; tenants without usage are listed too."""
    async with ledger.sessions() as session:
        only = None if tenant is None else await find_tenant(session, tenant)
        query = select(Tenant, Plan).outerjoin(Plan, Plan.id == Tenant.plan_id).order_by(Tenant.name)
        if only is not None:
            query = query.where(Tenant.id == only.id)
        owners = (await session.execute(query)).all()
        groups = await usage_groups(session, period.start, period.end, None if only is None else only.id)
    by_tenant: dict[str, dict[str, Served]] = {}
    for group in groups:
        models = by_tenant.setdefault(group.tenant_id, {})
        add_served(models, group.total.model, group.served())
    return [
        attainment(row.id, row.name, period.start, period.end, by_tenant.get(row.id, {}), objectives_of(plan))
        for row, plan in owners
    ]
