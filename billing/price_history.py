"""Price history in the database: append-only, never rewritten, never retroactive."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.currencies import validate_currency
from modelplex.billing.errors import Conflict, InvalidInput, NotFound
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import utcnow
from modelplex.billing.pricing import PriceBook, PriceRecord, parse_amount
from modelplex.billing.schemas import Request
from modelplex.billing.tables import Price, UsageEventRow

_log = logging.getLogger(__name__)


class PriceTerms(Request):
    """A price as declared by an admin, the CLI or a ModelDeployment's `pricing` block."""

    input_per_1m: object = Field(alias="inputPer1M")
    output_per_1m: object = Field(alias="outputPer1M")
    cached_input_per_1m: object | None = Field(default=None, alias="cachedInputPer1M")
    currency: str = "USD"


class ValidTerms(Request):
    currency: str
    input_per_1m: Decimal
    cached_input_per_1m: Decimal
    output_per_1m: Decimal


def validate_terms(terms: PriceTerms) -> ValidTerms:
    """Checked amounts and currency; cached input defaults to the input price."""
    input_ = parse_amount(terms.input_per_1m, param="inputPer1M")
    cached = (
        input_
        if terms.cached_input_per_1m is None
        else parse_amount(terms.cached_input_per_1m, param="cachedInputPer1M")
    )
    return ValidTerms(
        currency=validate_currency(terms.currency),
        input_per_1m=input_,
        cached_input_per_1m=cached,
        output_per_1m=parse_amount(terms.output_per_1m, param="outputPer1M"),
    )


def _record(row: Price) -> PriceRecord:
    return PriceRecord(
        id=row.id,
        model=row.model,
        currency=row.currency,
        input_per_1m=row.input_per_1m,
        cached_input_per_1m=row.cached_input_per_1m,
        output_per_1m=row.output_per_1m,
        effective_from=row.effective_from,
        source=row.source,
        created_at=row.created_at,
    )


def _check_model(model: str) -> str:
    name = model.strip()
    if not name or len(name) > 256:
        raise InvalidInput("a model name of 1 to 256 characters is required", param="model")
    return name


async def _last_usage(session: AsyncSession, model: str) -> datetime | None:
    query = select(func.max(UsageEventRow.started_at)).where(UsageEventRow.model == model)
    return (await session.execute(query)).scalar_one_or_none()


async def _append(session: AsyncSession, model: str, terms: ValidTerms, at: datetime, source: str) -> Price:
    last = await _last_usage(session, model)
    if last is not None and last >= at:
        raise Conflict(
            f"usage of {model!r} is already recorded at {last.isoformat()}; "
            "a price cannot take effect before usage that was billed at another price",
            param="effectiveFrom",
        )
    row = Price(model=model, effective_from=at, source=source, created_at=utcnow(), **terms.model_dump())
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            f"{model!r} already has a price effective from {at.isoformat()}", param="effectiveFrom"
        ) from None
    return row


async def set_price(
    ledger: Ledger,
    model: str,
    terms: PriceTerms,
    effective_from: datetime | None = None,
    source: str = "admin",
) -> PriceRecord:
    """Append a price for `model`, in force from `effective_from` (default: now)."""
    name, valid = _check_model(model), validate_terms(terms)
    at = effective_from or utcnow()
    async with ledger.transaction() as session:
        row = await _append(session, name, valid, at, source)
        record = _record(row)
    _log.info("Set price model=%s price_id=%d effective_from=%s", name, record.id, at.isoformat())
    return record


async def apply_deployment_pricing(
    ledger: Ledger, model: str, pricing: PriceTerms, source: str
) -> PriceRecord | None:
    """Record a ModelDeployment's declared pricing; adds a row only when it differs from the current one."""
    name, valid = _check_model(model), validate_terms(pricing)
    now = utcnow()
    async with ledger.transaction() as session:
        current = PriceBook(await _load(session, [name])).in_force(name, now)
        if current is not None and _same_terms(current, valid):
            return None
        record = _record(await _append(session, name, valid, now, source))
    _log.info("Recorded deployment price model=%s price_id=%d source=%s", name, record.id, source)
    return record


def _same_terms(current: PriceRecord, valid: ValidTerms) -> bool:
    held = (current.currency, current.input_per_1m, current.cached_input_per_1m, current.output_per_1m)
    return held == (valid.currency, valid.input_per_1m, valid.cached_input_per_1m, valid.output_per_1m)


async def _load(session: AsyncSession, models: Iterable[str] | None = None) -> list[PriceRecord]:
    query = select(Price).order_by(Price.model, Price.effective_from)
    if models is not None:
        query = query.where(Price.model.in_(list(models)))
    return [_record(row) for row in (await session.execute(query)).scalars()]


async def price_book(session: AsyncSession, models: Iterable[str] | None = None) -> PriceBook:
    return PriceBook(await _load(session, models))


async def list_prices(ledger: Ledger, model: str | None = None) -> list[PriceRecord]:
    """Price history (all models, or one); an unknown model is NotFound."""
    async with ledger.sessions() as session:
        records = await _load(session, None if model is None else [model])
    if model is not None and not records:
        raise NotFound(f"no prices are recorded for model {model!r}", param="model")
    return records


async def current_price(ledger: Ledger, model: str) -> PriceRecord | None:
    """The price of `model` in force now; None when it has none."""
    async with ledger.sessions() as session:
        return PriceBook(await _load(session, [model])).in_force(model, utcnow())
