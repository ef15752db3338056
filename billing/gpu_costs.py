"""GPU cost history in the database: what one GPU of a product costs per hour, append-only.

A change adds a row in force from its `effective_from`; nothing is rewritten, so the cost of past
capacity never changes after the fact. Amounts are held as integer nano-units (see tables.GpuCost).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.cost_book import NANOS, CostBook, CostRecord
from modelplex.billing.currencies import validate_currency
from modelplex.billing.errors import Conflict, InvalidInput, NotFound
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import EARLIEST, utcnow
from modelplex.billing.pricing import parse_amount
from modelplex.billing.tables import BIGINT_MAX, GpuCost

_log = logging.getLogger(__name__)
LOCAL_CPU_PRODUCT = "cpu"  # what the local stack's replicas run on


def check_product(product: str, *, param: str = "gpuProduct") -> str:
    name = product.strip()
    if not name or len(name) > 128:
        raise InvalidInput("a GPU product name of 1 to 128 characters is required", param=param)
    return name


def to_nanos(value: object, *, param: str = "perHour") -> int:
    """A non-negative amount with at most 9 decimal places, as integer nano-units."""
    amount = parse_amount(value, param=param)
    nanos = amount * NANOS
    if nanos != nanos.to_integral_value():
        raise InvalidInput(f"{value!r} has more than 9 decimal places", param=param)
    if nanos > BIGINT_MAX:
        raise InvalidInput(f"{value!r} is too large for a per-hour cost", param=param)
    return int(nanos)


def _record(row: GpuCost) -> CostRecord:
    return CostRecord(
        id=row.id,
        gpu_product=row.gpu_product,
        currency=row.currency,
        per_hour=Decimal(row.per_hour_nanos) / NANOS,
        effective_from=row.effective_from,
        source=row.source,
        created_at=row.created_at,
    )


async def set_cost(
    ledger: Ledger,
    product: str,
    per_hour: object,
    currency: str = "USD",
    effective_from: datetime | None = None,
    source: str = "admin",
) -> CostRecord:
    """Append a per-hour cost for one GPU of `product`, in force from `effective_from` (default: now)."""
    name, nanos, code = check_product(product), to_nanos(per_hour), validate_currency(currency)
    at = effective_from or utcnow()
    row = GpuCost(
        gpu_product=name,
        currency=code,
        per_hour_nanos=nanos,
        effective_from=at,
        source=source,
        created_at=utcnow(),
    )
    try:
        async with ledger.transaction() as session:
            session.add(row)
            await session.flush()
            record = _record(row)
    except IntegrityError:
        raise Conflict(
            f"{name!r} already has a cost effective from {at.isoformat()}", param="effectiveFrom"
        ) from None
    _log.info("Set GPU cost gpu_product=%s cost_id=%d effective_from=%s", name, record.id, at.isoformat())
    return record


async def load_costs(session: AsyncSession, products: set[str] | None = None) -> list[CostRecord]:
    query = select(GpuCost).order_by(GpuCost.gpu_product, GpuCost.effective_from)
    if products is not None:
        query = query.where(GpuCost.gpu_product.in_(sorted(products)))
    return [_record(row) for row in (await session.execute(query)).scalars()]


async def cost_book(session: AsyncSession, products: set[str] | None = None) -> CostBook:
    return CostBook(await load_costs(session, products))


async def list_costs(ledger: Ledger, product: str | None = None) -> list[CostRecord]:
    """Cost history (all products, or one); a product with no history is NotFound."""
    async with ledger.sessions() as session:
        records = await load_costs(session, None if product is None else {product})
    if product is not None and not records:
        raise NotFound(f"no costs are recorded for GPU product {product!r}", param="gpuProduct")
    return records


async def ensure_default_cost(ledger: Ledger, product: str, per_hour: object, source: str) -> bool:
    """Record `per_hour` for `product` only when it has no cost history at all (an admin's wins)."""
    async with ledger.sessions() as session:
        if await load_costs(session, {product}):
            return False
    # from the earliest instant: capacity recorded before anyone set a cost is costed too
    await set_cost(ledger, product, per_hour, effective_from=EARLIEST, source=source)
    return True
