"""The limiter interface and the token-bucket arithmetic both implementations share.

RPM and TPM are token buckets holding up to one minute's allowance and refilling at limit/60 per
second. A request takes 1 from the RPM bucket and its estimated prompt tokens from the TPM bucket up
front; when it ends, the TPM bucket is corrected by (prompt + completion tokens) - estimate, and may go
into debt (down to minus one minute's allowance), which later requests then wait out.
Concurrency is a set of leases per tenant; a lease expires on its own if a gateway dies holding it
(in Redis: the holder renews it while the request runs, however long that is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelplex.billing.contracts import PlanLimits

MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Ticket:
    """What `admit` took, so that `settle` can correct and release it."""

    tenant_id: str
    request_id: str
    estimated_tokens: int
    tokens_per_minute: int | None
    holds_slot: bool


@dataclass(frozen=True, slots=True)
class Denial:
    limit: str  # "requests per minute", "tokens per minute", "concurrent requests"
    retry_after: float


class LimitExceeded(Exception):
    def __init__(self, denial: Denial) -> None:
        super().__init__(denial.limit)
        self.denial = denial


class Limiter(Protocol):
    async def admit(
        self, tenant_id: str, request_id: str, limits: PlanLimits, estimated_tokens: int
    ) -> Ticket:
        """Take what the request needs, or raise LimitExceeded (taking nothing)."""
        ...

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        """Correct the token estimate and release the concurrency slot."""
        ...

    async def run(self) -> None:
        """Background upkeep while the gateway runs (renewing leases); returns at once if none."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class Bucket:
    level: float
    stamp: float

    def refill(self, now: float, per_minute: int) -> None:
        self.level = min(float(per_minute), self.level + (now - self.stamp) * per_minute / MINUTE)
        self.stamp = now

    def shortfall_seconds(self, amount: float, per_minute: int) -> float:
        """0 when `amount` can be taken now, else how long until it can."""
        return max(0.0, (amount - self.level) * MINUTE / per_minute)


def needed(estimated_tokens: int, per_minute: int) -> int:
    # A request bigger than a whole minute's allowance is admitted on a full bucket (and then owes).
    return min(estimated_tokens, per_minute)
