"""What each console page shows, read from the ledger's rollups (never raw usage rows).

Every figure comes from the functions the CLI and the admin API use (invoices, economics, SLO
attainment, budgets), so a page can never disagree with `modelplex invoice` or the JSON export.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing import capacity, scaling
from modelplex.billing.capacity import IntervalRecord
from modelplex.billing.contracts import BudgetStatus
from modelplex.billing.economics import Economics, Served, add_served
from modelplex.billing.economics_report import (
    EconomicsReport,
    PeriodBooks,
    UsageGroup,
    economics_of,
    invoices_of,
    objectives_of,
    period_books,
    usage_groups,
)
from modelplex.billing.errors import NotFound
from modelplex.billing.invoices import Invoice, UsageTotal
from modelplex.billing.keystore import KeyRecord, list_keys
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import Period, day_of, month_of, utcnow
from modelplex.billing.price_history import price_book
from modelplex.billing.scaling import DecisionRecord, ReadingRecord
from modelplex.billing.slo import Attainment, attainment
from modelplex.billing.statements import budget_of, build_invoice
from modelplex.billing.tables import Plan, Tenant, UsageHourly
from modelplex.billing.tenants import PlanRecord, find_tenant, plan_record
from modelplex.billing.usage import DayUsage, daily_usage

CURRENCY = "USD"  # the currency economics are shown in (GPU costs and prices in others are listed apart)
TOP = 10
DECISIONS = 50  # the model page's newest autoscaler decisions


@dataclass(frozen=True)
class Figures:
    """The headline numbers of a span: from the economics total."""

    requests: int
    tokens: int
    revenue: Decimal
    gpu_cost: Decimal
    margin: Decimal
    cost_per_1m_tokens: Decimal | None
    gpu_hours: Decimal


def figures(total: Economics) -> Figures:
    return Figures(
        requests=total.requests,
        tokens=total.tokens_served,
        revenue=total.revenue,
        gpu_cost=total.gpu_cost,
        margin=total.margin,
        cost_per_1m_tokens=total.cost_per_1m_tokens,
        gpu_hours=total.gpu_hours,
    )


@dataclass(frozen=True)
class TenantLine:
    """One tenant over a period: usage, what it was invoiced, its SLO standing."""

    tenant_id: str
    name: str
    status: str
    plan: str | None
    requests: int
    tokens: int
    totals: dict[str, Decimal]
    attainment: Attainment
    budget: BudgetStatus | None  # this month's use of the plan's budgets; None for other periods
    budget_used: Decimal | None  # the larger share of a stated token or spend budget, 0..1+


@dataclass(frozen=True)
class Overview:
    period: Period
    today: Figures | None  # only when the period is the current month
    month: Figures
    currency: str
    top_tenants: list[TenantLine]
    top_models: list[Economics]
    days: list[DayUsage]


@dataclass(frozen=True)
class TenantDetail:
    line: TenantLine
    plan: PlanRecord | None
    keys: list[KeyRecord]
    days: list[DayUsage]
    invoice: Invoice | None  # the period's invoice (None: no usage in it)
    invoice_periods: list[str]  # months with usage, newest first


@dataclass(frozen=True)
class ModelDetail:
    economics: Economics
    replicas_now: int
    replica_steps: list[tuple[datetime, int]]  # (moment, replicas serving from then on)
    intervals: list[IntervalRecord]
    days: list[DayUsage]
    decisions: list[DecisionRecord]  # the autoscaler's, in the period, newest first
    readings: list[ReadingRecord]  # its last reading of each deployment serving the model: load now


@dataclass(frozen=True)
class TenantBook:
    """The rows one tenant's figures are made of."""

    usage: list[UsageTotal] = field(default_factory=list)
    served: dict[str, Served] = field(default_factory=dict)


def is_current(period: Period, now: datetime) -> bool:
    return period.start <= now < period.end


def today_of(now: datetime) -> Period:
    """Today so far, as the whole UTC day: no usage lies ahead of now, and open replica intervals count
    up to now, so the figures are the same as up to this hour's end, read from one daily rollup row per
    tenant, model and price instead of an hourly row per hour."""
    start = day_of(now)
    return Period(label=start.date().isoformat(), start=start, end=start + timedelta(days=1))


def tenant_books(groups: Iterable[UsageGroup]) -> dict[str, TenantBook]:
    books: dict[str, TenantBook] = {}
    for group in groups:
        book = books.setdefault(group.tenant_id, TenantBook())
        book.usage.append(group.total)
        add_served(book.served, group.total.model, group.served())
    return books


def budget_share(plan: Plan | None, status: BudgetStatus) -> Decimal | None:
    """How much of its tightest stated budget a tenant used (1 = all of it); None without budgets."""
    if plan is None:
        return None
    shares = []
    if plan.monthly_token_budget:
        shares.append(Decimal(status.tokens_used) / plan.monthly_token_budget)
    if plan.monthly_spend_budget:
        shares.append(status.spend_used / plan.monthly_spend_budget)
    return max(shares) if shares else None


async def _owners(
    session: AsyncSession, tenant_ids: Collection[str] | None = None
) -> list[tuple[Tenant, Plan | None]]:
    query = select(Tenant, Plan).outerjoin(Plan, Plan.id == Tenant.plan_id).order_by(Tenant.name)
    if tenant_ids is not None:
        query = query.where(Tenant.id.in_(tenant_ids))
    return [(row.Tenant, row.Plan) for row in (await session.execute(query)).all()]


@dataclass(frozen=True)
class Billed:
    """A period's usage rollups and the invoices made of them (of everyone, or of one tenant)."""

    period: Period
    groups: list[UsageGroup]
    invoices: list[Invoice]


async def billed(session: AsyncSession, period: Period, tenant_id: str | None = None) -> Billed:
    groups = await usage_groups(session, period.start, period.end, tenant_id)
    return Billed(period=period, groups=groups, invoices=await invoices_of(session, period, groups))


async def _tenant_lines(
    session: AsyncSession,
    books: Billed | PeriodBooks,
    now: datetime,
    tenant_ids: Collection[str] | None = None,
) -> list[TenantLine]:
    current = is_current(books.period, now)
    wanted = None if tenant_ids is None else set(tenant_ids)
    by_tenant = tenant_books(group for group in books.groups if wanted is None or group.tenant_id in wanted)
    invoices = {invoice.tenant_id: invoice for invoice in books.invoices}
    prices = await price_book(session, {group.total.model for group in books.groups}) if current else None
    lines = []
    for tenant, plan in await _owners(session, tenant_ids):
        book = by_tenant.get(tenant.id, TenantBook())
        budget = None if prices is None else budget_of(plan, book.usage, prices)
        invoice = invoices.get(tenant.id)
        lines.append(
            TenantLine(
                tenant_id=tenant.id,
                name=tenant.name,
                status=tenant.status,
                plan=None if plan is None else plan.name,
                requests=sum(row.requests for row in book.usage),
                tokens=sum(row.prompt_tokens + row.completion_tokens for row in book.usage),
                totals={} if invoice is None else dict(invoice.totals),
                attainment=attainment(
                    tenant.id,
                    tenant.name,
                    books.period.start,
                    books.period.end,
                    book.served,
                    objectives_of(plan),
                    per_model=False,
                ),
                budget=budget,
                budget_used=None if budget is None else budget_share(plan, budget),
            )
        )
    return lines


def _revenue_rank(
    totals: dict[str, Decimal], tokens: int, name: str, currency: str
) -> tuple[Decimal, int, str]:
    return (-totals.get(currency, Decimal(0)), -tokens, name)


def by_revenue(lines: Sequence[TenantLine], currency: str) -> list[TenantLine]:
    return sorted(lines, key=lambda line: _revenue_rank(line.totals, line.tokens, line.name, currency))


def top_tenant_ids(books: PeriodBooks, currency: str, count: int) -> list[str]:
    """The tenants with usage that earned most (then used most tokens), from the invoices alone: the
    overview builds its lines, SLO attainment included, only for these."""
    tokens: dict[str, int] = {}
    active: set[str] = set()
    for group in books.groups:
        total = group.total
        tokens[group.tenant_id] = (
            tokens.get(group.tenant_id, 0) + total.prompt_tokens + total.completion_tokens
        )
        if total.requests:
            active.add(group.tenant_id)
    ranked = sorted(
        (invoice for invoice in books.invoices if invoice.tenant_id in active),
        key=lambda inv: _revenue_rank(inv.totals, tokens[inv.tenant_id], inv.tenant, currency),
    )
    return [invoice.tenant_id for invoice in ranked[:count]]


def _economics(books: PeriodBooks, now: datetime) -> EconomicsReport:
    return economics_of(books, CURRENCY, now)


async def overview(ledger: Ledger, period: Period, now: datetime | None = None) -> Overview:
    moment = now or utcnow()
    current = is_current(period, moment)
    async with ledger.sessions() as session:
        books = await period_books(session, period)
        # today's figures show no latency: its histograms are not read
        today = await period_books(session, today_of(moment), latency=False) if current else None
        lines = await _tenant_lines(session, books, moment, top_tenant_ids(books, CURRENCY, TOP))
        days = await daily_usage(session, period.start, period.end)
    report = _economics(books, moment)
    return Overview(
        period=period,
        today=None if today is None else figures(_economics(today, moment).total),
        month=figures(report.total),
        currency=CURRENCY,
        top_tenants=by_revenue(lines, CURRENCY),
        top_models=sorted(report.models, key=lambda row: (-row.tokens_served, row.model))[:TOP],
        days=days,
    )


async def tenant_list(ledger: Ledger, period: Period, now: datetime | None = None) -> list[TenantLine]:
    async with ledger.sessions() as session:
        return await _tenant_lines(session, await billed(session, period), now or utcnow())


async def _usage_months(session: AsyncSession, tenant_id: str) -> list[str]:
    first, last = (
        await session.execute(
            select(func.min(UsageHourly.hour), func.max(UsageHourly.hour)).where(
                UsageHourly.tenant_id == tenant_id
            )
        )
    ).one()
    if first is None or last is None:
        return []
    months, month = [], month_of(first)
    while month.start <= last:
        months.append(month.label)
        month = month_of(month.end)
    return months[::-1]


async def tenant_detail(
    ledger: Ledger, tenant: str, period: Period, now: datetime | None = None
) -> TenantDetail:
    """One tenant (by name or id) over `period`; NotFound when there is no such tenant."""
    moment = now or utcnow()
    async with ledger.sessions() as session:
        owner = await find_tenant(session, tenant)
        books = await billed(session, period, owner.id)
        (line,) = await _tenant_lines(session, books, moment, [owner.id])
        plan = None if owner.plan_id is None else await session.get(Plan, owner.plan_id)
        days = await daily_usage(session, period.start, period.end, tenant_id=owner.id)
        months = await _usage_months(session, owner.id)
    invoice = next((inv for inv in books.invoices if inv.tenant_id == owner.id), None)
    return TenantDetail(
        line=line,
        plan=None if plan is None else plan_record(plan),
        keys=await list_keys(ledger, owner.id),
        days=days,
        invoice=invoice,
        invoice_periods=months,
    )


async def model_list(
    ledger: Ledger, period: Period, now: datetime | None = None
) -> tuple[EconomicsReport, dict[str, int]]:
    """Each model's economics over `period`, and how many replicas of each serve now."""
    moment = now or utcnow()
    async with ledger.sessions() as session:
        books = await period_books(session, period)
        now_serving = await _serving_now(session, moment)
    return _economics(books, moment), now_serving


async def _serving_now(session: AsyncSession, moment: datetime) -> dict[str, int]:
    """How many replicas of each model serve at `moment`, whatever period a page shows."""
    serving = await capacity.intervals_between(session, moment, moment + timedelta(microseconds=1))
    now_serving: dict[str, int] = {}
    for interval in serving:
        if interval.ended_at is None:
            now_serving[interval.model] = now_serving.get(interval.model, 0) + 1
    return now_serving


def replica_steps(
    intervals: Iterable[IntervalRecord], start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """The number of serving replicas over [start, end) as steps: (moment, count from then on); pure."""
    changes: dict[datetime, int] = {}
    for interval in intervals:
        opened = max(interval.started_at, start)
        closed = end if interval.ended_at is None else min(interval.ended_at, end)
        if closed <= opened:
            continue
        changes[opened] = changes.get(opened, 0) + 1
        if closed < end:  # the steps describe [start, end): what ends with the range needs no step
            changes[closed] = changes.get(closed, 0) - 1
    steps, count = [(start, 0)], 0
    for moment in sorted(changes):
        count += changes[moment]
        if moment == steps[-1][0]:
            steps[-1] = (moment, count)
        elif count != steps[-1][1]:
            steps.append((moment, count))
    return steps


async def model_detail(
    ledger: Ledger, model: str, period: Period, now: datetime | None = None
) -> ModelDetail:
    moment = now or utcnow()
    async with ledger.sessions() as session:
        books = await period_books(session, period)
        days = await daily_usage(session, period.start, period.end, model=model)
        decisions = await scaling.decisions_between(session, model, period.start, period.end, DECISIONS)
        readings = await scaling.readings_of(session, model)
        serving_now = await _serving_now(session, moment)
    report = _economics(books, moment)
    row = next((row for row in report.models if row.model == model), None)
    if row is None:
        raise NotFound(f"no model named {model!r} served or had capacity in {period.label}", param="model")
    intervals = [interval for interval in books.intervals if interval.model == model]
    until = min(period.end, moment)
    return ModelDetail(
        economics=row,
        replicas_now=serving_now.get(model, 0),
        replica_steps=replica_steps(intervals, period.start, until),
        intervals=sorted(intervals, key=lambda interval: interval.started_at, reverse=True)[:50],
        days=days,
        decisions=decisions,
        readings=readings,
    )


async def invoice_list(ledger: Ledger, period: Period, tenant: str | None = None) -> list[Invoice]:
    """The period's invoices: of every tenant with usage, or of one tenant (with or without usage),
    computed as `modelplex invoice` computes them."""
    if tenant is not None:
        return [await build_invoice(ledger, tenant, period.label)]
    async with ledger.sessions() as session:
        return (await billed(session, period)).invoices
