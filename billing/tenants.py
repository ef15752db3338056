"""Tenants and plans: who may call, and within which limits."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime
from decimal import Decimal

from pydantic import Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.contracts import PlanLimits
from modelplex.billing.currencies import validate_currency
from modelplex.billing.errors import Conflict, InvalidInput, NotFound
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import utcnow
from modelplex.billing.pricing import parse_amount, plain
from modelplex.billing.schemas import Record, Request
from modelplex.billing.tables import BIGINT_MAX, Plan, Tenant

_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")
_log = logging.getLogger(__name__)


class PlanTerms(Request):
    """A plan's limits as declared; None means unlimited."""

    requests_per_minute: int | None = Field(default=None, ge=0, le=BIGINT_MAX)
    tokens_per_minute: int | None = Field(default=None, ge=0, le=BIGINT_MAX)
    concurrent_requests: int | None = Field(default=None, ge=0, le=BIGINT_MAX)
    monthly_token_budget: int | None = Field(default=None, ge=0, le=BIGINT_MAX)
    monthly_spend_budget: str | None = None  # a decimal string: money never passes through float
    currency: str = "USD"
    allowed_models: list[str] | None = None
    slo_ttft_p95_ms: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    slo_availability_percent: str | None = None  # a decimal string, e.g. "99.5"


class PlanSpec(PlanTerms):
    name: str


class PlanRecord(Record):
    name: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    concurrent_requests: int | None
    monthly_token_budget: int | None
    monthly_spend_budget: Decimal | None
    currency: str
    allowed_models: list[str] | None
    slo_ttft_p95_ms: int | None = None
    slo_availability_percent: Decimal | None = None

    @field_validator("monthly_spend_budget", "slo_availability_percent")
    @classmethod
    def _plain(cls, value: Decimal | None) -> Decimal | None:
        return None if value is None else plain(value)


class TenantRecord(Record):
    id: str
    name: str
    status: str
    plan: str | None
    created_at: datetime


def check_name(name: str, *, param: str = "name") -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"{name!r} is not a valid name: 1-64 lower-case letters, digits, '.', '_' or '-'", param=param
        )
    return name


PPM_PER_PERCENT = 10_000


def availability_ppm(text: str, *, param: str = "sloAvailabilityPercent") -> int:
    """A percentage from 0 to 100 with at most 4 decimal places, as parts per million."""
    percent = parse_amount(text, param=param)
    ppm = percent * PPM_PER_PERCENT
    if percent > 100 or ppm != ppm.to_integral_value():
        raise InvalidInput(f"{text!r} is not a percentage from 0 to 100 with at most 4 decimals", param=param)
    return int(ppm)


def availability_percent(ppm: int | None) -> Decimal | None:
    return None if ppm is None else plain(Decimal(ppm) / PPM_PER_PERCENT)


def plan_record(row: Plan) -> PlanRecord:
    fields = [field for field in PlanRecord.model_fields if field != "slo_availability_percent"]
    values = {field: getattr(row, field) for field in fields}
    values["slo_availability_percent"] = availability_percent(row.slo_availability_ppm)
    return PlanRecord.model_validate(values)


def plan_limits(row: Plan | None) -> PlanLimits:
    if row is None:
        return PlanLimits()
    allowed = None if row.allowed_models is None else frozenset(row.allowed_models)
    return PlanLimits(
        requests_per_minute=row.requests_per_minute,
        tokens_per_minute=row.tokens_per_minute,
        concurrent_requests=row.concurrent_requests,
        monthly_token_budget=row.monthly_token_budget,
        monthly_spend_budget=row.monthly_spend_budget,
        currency=row.currency,
        allowed_models=allowed,
    )


def _plan_values(spec: PlanSpec) -> dict[str, object]:
    budget = spec.monthly_spend_budget
    return {
        "requests_per_minute": spec.requests_per_minute,
        "tokens_per_minute": spec.tokens_per_minute,
        "concurrent_requests": spec.concurrent_requests,
        "monthly_token_budget": spec.monthly_token_budget,
        "monthly_spend_budget": None if budget is None else parse_amount(budget, param="monthlySpendBudget"),
        "currency": validate_currency(spec.currency),
        "allowed_models": None if spec.allowed_models is None else sorted(set(spec.allowed_models)),
        "slo_ttft_p95_ms": spec.slo_ttft_p95_ms,
        "slo_availability_ppm": None
        if spec.slo_availability_percent is None
        else availability_ppm(spec.slo_availability_percent),
    }


async def put_plan(ledger: Ledger, spec: PlanSpec) -> PlanRecord:
    """Create the plan, or replace the limits of the plan with that name."""
    values, now = _plan_values(spec), utcnow()
    async with ledger.transaction() as session:
        row = (
            await session.execute(select(Plan).where(Plan.name == check_name(spec.name)))
        ).scalar_one_or_none()
        if row is None:
            row = Plan(name=spec.name, created_at=now, updated_at=now, **values)
            session.add(row)
        else:
            for field, value in values.items():
                setattr(row, field, value)
            row.updated_at = now
        await session.flush()
        record = plan_record(row)
    _log.info("Put plan name=%s", spec.name)
    return record


async def list_plans(ledger: Ledger) -> list[PlanRecord]:
    async with ledger.sessions() as session:
        rows = (await session.execute(select(Plan).order_by(Plan.name))).scalars()
        return [plan_record(row) for row in rows]


async def find_plan(session: AsyncSession, name: str) -> Plan:
    row = (await session.execute(select(Plan).where(Plan.name == name))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no plan named {name!r}", param="plan")
    return row


async def find_tenant(session: AsyncSession, ref: str) -> Tenant:
    """A tenant by name or id; NotFound naming `tenant`."""
    query = select(Tenant).where(or_(Tenant.name == ref, Tenant.id == ref))
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no tenant named {ref!r}", param="tenant")
    return row


async def _tenant_record(session: AsyncSession, row: Tenant) -> TenantRecord:
    plan = None if row.plan_id is None else await session.get(Plan, row.plan_id)
    return TenantRecord(
        id=row.id,
        name=row.name,
        status=row.status,
        plan=None if plan is None else plan.name,
        created_at=row.created_at,
    )


async def create_tenant(ledger: Ledger, name: str, plan: str | None = None) -> TenantRecord:
    check_name(name)
    async with ledger.transaction() as session:
        plan_id = None if plan is None else (await find_plan(session, plan)).id
        row = Tenant(
            id="tnt_" + secrets.token_hex(8), name=name, status="active", plan_id=plan_id, created_at=utcnow()
        )
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict(f"a tenant named {name!r} already exists", param="name") from None
        record = await _tenant_record(session, row)
    _log.info("Created tenant name=%s id=%s plan=%s", name, record.id, plan)
    return record


async def list_tenants(ledger: Ledger) -> list[TenantRecord]:
    async with ledger.sessions() as session:
        rows = list((await session.execute(select(Tenant).order_by(Tenant.name))).scalars())
        return [await _tenant_record(session, row) for row in rows]


async def get_tenant(ledger: Ledger, ref: str) -> TenantRecord:
    async with ledger.sessions() as session:
        return await _tenant_record(session, await find_tenant(session, ref))


async def update_tenant(
    ledger: Ledger, ref: str, *, status: str | None = None, plan: str | None = None
) -> TenantRecord:
    """Suspend or reactivate a tenant, or move it to another plan."""
    if status is not None and status not in {"active", "suspended"}:
        raise InvalidInput(f"{status!r} is not a tenant status: use active or suspended", param="status")
    async with ledger.transaction() as session:
        row = await find_tenant(session, ref)
        if status is not None:
            row.status = status
        if plan is not None:
            row.plan_id = (await find_plan(session, plan)).id
        record = await _tenant_record(session, row)
    _log.info("Updated tenant name=%s status=%s plan=%s", record.name, record.status, record.plan)
    return record
