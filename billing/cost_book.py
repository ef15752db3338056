"""GPU costs, pure: which cost was in force when, and what a span of GPU time cost.

Time is counted in whole microseconds (what both databases store), so GPU time and its cost are
exact: cost = per_hour x gpus x microseconds / 3_600_000_000, in a decimal context wide enough to
hold every digit; rounding to the currency's minor unit happens once, on a total.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Context, Decimal

from pydantic import Field, field_validator

from modelplex.billing.pricing import plain
from modelplex.billing.schemas import Record

NANOS = Decimal(1_000_000_000)
MICROS_PER_HOUR = 3_600_000_000
EXACT = Context(prec=60)  # per_hour has 9 decimals and 19 digits; a period has under 16 digits of us


class CostRecord(Record):
    """One row of a GPU product's cost history: one GPU, one hour."""

    id: int
    gpu_product: str
    currency: str
    per_hour: Decimal = Field(alias="perHour")
    effective_from: datetime
    source: str
    created_at: datetime

    @field_validator("per_hour")
    @classmethod
    def _plain(cls, value: Decimal) -> Decimal:
        return plain(value)


def micros(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def gpu_hours(gpu_micros: int) -> Decimal:
    """GPU-microseconds as exact GPU-hours."""
    return EXACT.divide(Decimal(gpu_micros), Decimal(MICROS_PER_HOUR))


def span_cost(per_hour: Decimal, gpu_micros: int) -> Decimal:
    """The exact cost of `gpu_micros` GPU-microseconds at `per_hour` per GPU-hour."""
    return EXACT.divide(EXACT.multiply(per_hour, Decimal(gpu_micros)), Decimal(MICROS_PER_HOUR))


class CostBook:
    """Cost histories by GPU product, each sorted by effective_from."""

    def __init__(self, costs: Iterable[CostRecord]) -> None:
        self._by_product: dict[str, list[CostRecord]] = {}
        for cost in sorted(costs, key=lambda c: (c.gpu_product, c.effective_from)):
            self._by_product.setdefault(cost.gpu_product, []).append(cost)
        self._starts = {p: [c.effective_from for c in h] for p, h in self._by_product.items()}

    def segments(
        self, product: str, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, datetime, CostRecord | None]]:
        """[start, end) cut where the product's cost changes, each piece with the cost in force
        (None before the product's first cost)."""
        history = self._by_product.get(product, [])
        starts = self._starts.get(product, [])
        index = bisect.bisect_right(starts, start) - 1
        at = start
        while at < end:
            upcoming = starts[index + 1] if index + 1 < len(starts) else None
            until = end if upcoming is None or upcoming >= end else upcoming
            yield at, until, history[index] if index >= 0 else None
            at, index = until, index + 1
