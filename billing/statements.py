"""Invoices and budgets read from the database (the arithmetic lives in `invoices`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.contracts import BudgetStatus
from modelplex.billing.errors import NotFound
from modelplex.billing.invoices import Invoice, UsageTotal, compute_invoice, spend
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import month_of, parse_period, utcnow
from modelplex.billing.price_history import price_book
from modelplex.billing.pricing import PriceBook
from modelplex.billing.tables import Plan, Tenant
from modelplex.billing.tenants import find_tenant
from modelplex.billing.usage import usage_totals


async def build_invoice(ledger: Ledger, tenant: str, period: str) -> Invoice:
    """The invoice of `tenant` (name or id) for the calendar month `period` (YYYY-MM, UTC)."""
    month = parse_period(period)
    async with ledger.sessions() as session:
        owner = await find_tenant(session, tenant)
        usage = await usage_totals(session, owner.id, month.start, month.end)
        book = await price_book(session, {row.model for row in usage})
    return compute_invoice(owner.id, owner.name, month, usage, book)


def budget_of(plan: Plan | None, usage: Sequence[UsageTotal], book: PriceBook) -> BudgetStatus:
    """What `usage` (this month's) uses of `plan`'s monthly budgets; pure."""
    tokens = sum(row.prompt_tokens + row.completion_tokens for row in usage)
    spent = spend(usage, book, plan.currency if plan else "USD")
    token_budget = None if plan is None else plan.monthly_token_budget
    spend_budget = None if plan is None else plan.monthly_spend_budget
    return BudgetStatus(
        tokens_used=tokens,
        spend_used=spent,
        tokens_remaining=None if token_budget is None else token_budget - tokens,
        spend_remaining=None if spend_budget is None else spend_budget - spent,
    )


async def _budget(session: AsyncSession, tenant: Tenant, now: datetime) -> BudgetStatus:
    month = month_of(now)
    plan = None if tenant.plan_id is None else await session.get(Plan, tenant.plan_id)
    usage = await usage_totals(session, tenant.id, month.start, month.end)
    return budget_of(plan, usage, await price_book(session, {row.model for row in usage}))


async def budget_status(ledger: Ledger, tenant_id: str, now: datetime | None = None) -> BudgetStatus:
    """What the tenant used of its plan's monthly budgets in the current UTC month."""
    async with ledger.sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant with id {tenant_id!r}", param="tenant")
        return await _budget(session, tenant, now or utcnow())
