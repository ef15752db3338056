"""In-process limits (one gateway replica)."""

from __future__ import annotations

import time

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import Bucket, Denial, LimitExceeded, Ticket, needed


class MemoryLimiter:
    def __init__(self) -> None:
        self._rpm: dict[str, Bucket] = {}
        self._tpm: dict[str, Bucket] = {}
        self._slots: dict[str, int] = {}

    async def admit(
        self, tenant_id: str, request_id: str, limits: PlanLimits, estimated_tokens: int
    ) -> Ticket:
        now = time.monotonic()
        rpm, tpm, slots = limits.requests_per_minute, limits.tokens_per_minute, limits.concurrent_requests
        denial = self._check(tenant_id, now, rpm, tpm, slots, estimated_tokens)
        if denial is not None:
            raise LimitExceeded(denial)
        if rpm is not None:
            self._rpm[tenant_id].level -= 1
        if tpm is not None:
            self._tpm[tenant_id].level -= estimated_tokens
        if slots is not None:
            self._slots[tenant_id] = self._slots.get(tenant_id, 0) + 1
        return Ticket(tenant_id, request_id, estimated_tokens, tpm, slots is not None)

    def _check(
        self, tenant_id: str, now: float, rpm: int | None, tpm: int | None, slots: int | None, estimate: int
    ) -> Denial | None:
        if rpm is not None:
            bucket = _bucket(self._rpm, tenant_id, now, rpm)
            if wait := bucket.shortfall_seconds(1, rpm):
                return Denial("requests per minute", wait)
        if tpm is not None:
            bucket = _bucket(self._tpm, tenant_id, now, tpm)
            if wait := bucket.shortfall_seconds(needed(estimate, tpm), tpm):
                return Denial("tokens per minute", wait)
        if slots is not None and self._slots.get(tenant_id, 0) >= slots:
            return Denial("concurrent requests", 1.0)
        return None

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        if ticket.tokens_per_minute is not None:
            bucket = self._tpm[ticket.tenant_id]
            bucket.level = max(
                -ticket.tokens_per_minute, bucket.level - (actual_tokens - ticket.estimated_tokens)
            )
        if ticket.holds_slot:
            self._slots[ticket.tenant_id] -= 1

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _bucket(buckets: dict[str, Bucket], tenant_id: str, now: float, per_minute: int) -> Bucket:
    bucket = buckets.get(tenant_id)
    if bucket is None:
        bucket = buckets[tenant_id] = Bucket(float(per_minute), now)
    bucket.refill(now, per_minute)
    return bucket
