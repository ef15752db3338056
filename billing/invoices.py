"""Invoices, pure: one line per model and price segment, from hourly usage and the price history.

Amounts are exact per line, then rounded half-up to the currency's minor unit; a total is the sum
of its rounded lines, so every invoice adds up to the cent as printed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import Field

from modelplex.billing.currencies import round_money
from modelplex.billing.periods import Period
from modelplex.billing.pricing import PriceBook, token_cost
from modelplex.billing.schemas import Record
from modelplex.billing.tables import UNPRICED


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Tokens of one tenant for one model at one price (price_id 0: unpriced) over some hours (a
    dataclass: a month's pages build one per tenant, model and price, thousands of them)."""

    model: str
    price_id: int
    requests: int
    aborted: int
    failed: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


class InvoiceLine(Record):
    model: str
    price_id: int | None
    segment_start: datetime
    segment_end: datetime
    currency: str | None
    requests: int
    input_tokens: int  # prompt tokens not served from cache
    cached_input_tokens: int
    output_tokens: int
    input_per_1m: Decimal | None = Field(alias="inputPer1M")
    cached_input_per_1m: Decimal | None = Field(alias="cachedInputPer1M")
    output_per_1m: Decimal | None = Field(alias="outputPer1M")
    amount: Decimal


class Invoice(Record):
    tenant_id: str
    tenant: str
    period: str
    period_start: datetime
    period_end: datetime
    lines: list[InvoiceLine]
    totals: dict[str, Decimal]  # by currency
    unpriced_requests: int


def _line(total: UsageTotal, book: PriceBook, period: Period) -> InvoiceLine:
    price = book.by_id.get(total.price_id) if total.price_id != UNPRICED else None
    start, end = period.start, period.end
    if price is not None:
        start = max(start, price.effective_from)
        end = min(end, book.next_change(price) or end)
    return InvoiceLine(
        model=total.model,
        price_id=None if price is None else price.id,
        segment_start=start,
        segment_end=end,
        currency=None if price is None else price.currency,
        requests=total.requests,
        input_tokens=max(total.prompt_tokens - total.cached_tokens, 0),
        cached_input_tokens=total.cached_tokens,
        output_tokens=total.completion_tokens,
        input_per_1m=None if price is None else price.input_per_1m,
        cached_input_per_1m=None if price is None else price.cached_input_per_1m,
        output_per_1m=None if price is None else price.output_per_1m,
        amount=Decimal(0)
        if price is None
        else round_money(
            token_cost(price, total.prompt_tokens, total.cached_tokens, total.completion_tokens),
            price.currency,
        ),
    )


def compute_invoice(
    tenant_id: str, tenant: str, period: Period, usage: Iterable[UsageTotal], book: PriceBook
) -> Invoice:
    """The invoice for `usage` (already limited to the tenant and period), priced from `book`."""
    lines = sorted(
        (_line(total, book, period) for total in usage), key=lambda line: (line.model, line.segment_start)
    )
    totals: dict[str, Decimal] = {}
    for line in lines:
        if line.currency is not None:
            totals[line.currency] = totals.get(line.currency, Decimal(0)) + line.amount
    return Invoice(
        tenant_id=tenant_id,
        tenant=tenant,
        period=period.label,
        period_start=period.start,
        period_end=period.end,
        lines=lines,
        totals=totals,
        unpriced_requests=sum(line.requests for line in lines if line.price_id is None),
    )


def spend(usage: Iterable[UsageTotal], book: PriceBook, currency: str) -> Decimal:
    """Unrounded spend in `currency` (for budgets); usage priced in other currencies is not counted."""
    total = Decimal(0)
    for row in usage:
        price = book.by_id.get(row.price_id)
        if price is not None and price.currency == currency:
            total += token_cost(price, row.prompt_tokens, row.cached_tokens, row.completion_tokens)
    return total
