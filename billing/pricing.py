"""Prices, pure: validating amounts, which price is in force when, and what tokens cost."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from pydantic import Field, field_validator

from modelplex.billing.errors import InvalidInput
from modelplex.billing.schemas import Record
from modelplex.billing.tables import MONEY_DIGITS, PRICE_SCALE

PER = Decimal(1_000_000)
# The money column holds MONEY_DIGITS digits, PRICE_SCALE of them after the point.
AMOUNT_LIMIT = Decimal(10) ** (MONEY_DIGITS - PRICE_SCALE)


def plain(amount: Decimal) -> Decimal:
    """`amount` without trailing zeros or an exponent (0.1500000000 -> 0.15, 100 stays 100)."""
    normalized = amount.normalize()
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral() else normalized


def parse_amount(value: object, *, param: str) -> Decimal:
    """A non-negative, finite decimal with at most PRICE_SCALE places; InvalidInput naming `param`."""
    if isinstance(value, bool):
        raise InvalidInput(f"{value!r} is not a number", param=param)
    # repr keeps a float's shortest round-trip text (0.15, not 0.1499999...)
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"{value!r} is not a number", param=param) from None
    if not amount.is_finite():
        raise InvalidInput(f"{value!r} is not a finite number", param=param)
    if amount < 0:
        raise InvalidInput(f"{value!r} is negative; amounts must be zero or more", param=param)
    if amount >= AMOUNT_LIMIT:
        raise InvalidInput(f"{value!r} is too large: amounts must be below {AMOUNT_LIMIT:,}", param=param)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_SCALE:
        raise InvalidInput(f"{value!r} has more than {PRICE_SCALE} decimal places", param=param)
    return amount


class PriceRecord(Record):
    """One row of a model's price history (per 1M tokens)."""

    id: int
    model: str
    currency: str
    input_per_1m: Decimal = Field(alias="inputPer1M")
    cached_input_per_1m: Decimal = Field(alias="cachedInputPer1M")
    output_per_1m: Decimal = Field(alias="outputPer1M")
    effective_from: datetime
    source: str
    created_at: datetime

    @field_validator("input_per_1m", "cached_input_per_1m", "output_per_1m")
    @classmethod
    def _plain(cls, value: Decimal) -> Decimal:
        return plain(value)


class PriceBook:
    """Price histories by model, each sorted by effective_from: answers 'which price applied then'."""

    def __init__(self, prices: Iterable[PriceRecord]) -> None:
        self._by_model: dict[str, list[PriceRecord]] = {}
        for price in sorted(prices, key=lambda p: (p.model, p.effective_from)):
            self._by_model.setdefault(price.model, []).append(price)
        self._starts = {m: [p.effective_from for p in h] for m, h in self._by_model.items()}
        self.by_id = {p.id: p for h in self._by_model.values() for p in h}

    def history(self, model: str) -> Sequence[PriceRecord]:
        return self._by_model.get(model, [])

    def in_force(self, model: str, at: datetime) -> PriceRecord | None:
        starts = self._starts.get(model)
        if not starts:
            return None
        index = bisect.bisect_right(starts, at) - 1
        return self._by_model[model][index] if index >= 0 else None

    def next_change(self, price: PriceRecord) -> datetime | None:
        """When `price` stopped (or will stop) being in force; None while it is the latest."""
        history = self._by_model[price.model]
        position = history.index(price)
        return history[position + 1].effective_from if position + 1 < len(history) else None


def token_cost(price: PriceRecord, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> Decimal:
    """Exact, unrounded cost. Cached tokens are part of prompt_tokens (OpenAI usage semantics)."""
    uncached = max(prompt_tokens - cached_tokens, 0)
    return (
        uncached * price.input_per_1m
        + cached_tokens * price.cached_input_per_1m
        + completion_tokens * price.output_per_1m
    ) / PER
