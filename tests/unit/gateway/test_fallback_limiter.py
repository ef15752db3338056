"""FallbackLimiter: shared limits while they answer, this replica's own while they do not."""

from __future__ import annotations

import asyncio

import pytest

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import LimitExceeded, Ticket
from modelplex.gateway.limits.fallback import FallbackLimiter
from modelplex.gateway.limits.memory import MemoryLimiter

ONE_PER_MINUTE = PlanLimits(requests_per_minute=1)


class Flaky(MemoryLimiter):
    """A shared limiter that can be taken away."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True
        self.settled: list[str] = []

    async def admit(
        self, tenant_id: str, request_id: str, limits: PlanLimits, estimated_tokens: int
    ) -> Ticket:
        if not self.up:
            raise ConnectionError("refused")
        return await super().admit(tenant_id, request_id, limits, estimated_tokens)

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        self.settled.append(ticket.request_id)
        await super().settle(ticket, actual_tokens)


def test_outage_uses_local_limits_until_the_retry_then_shared_again() -> None:
    now = [0.0]
    shared, local = Flaky(), MemoryLimiter()
    limiter = FallbackLimiter(shared, local, retry_seconds=5, clock=lambda: now[0])

    async def scenario() -> None:
        await limiter.admit("t", "a", ONE_PER_MINUTE, 1)  # shared
        shared.up = False
        local_ticket = await limiter.admit("t", "b", ONE_PER_MINUTE, 1)  # local: its own bucket
        assert limiter.degraded
        with pytest.raises(LimitExceeded):
            await limiter.admit("t", "c", ONE_PER_MINUTE, 1)  # local again, and limited
        shared.up = True
        now[0] = 4.9
        with pytest.raises(LimitExceeded):
            await limiter.admit("t", "d", ONE_PER_MINUTE, 1)  # still local before the retry
        now[0] = 5.0
        with pytest.raises(LimitExceeded):  # shared again: its bucket still holds "a"
            await limiter.admit("t", "e", ONE_PER_MINUTE, 1)
        assert not limiter.degraded
        await limiter.settle(local_ticket, 1)
        assert shared.settled == []  # settled where it was admitted

    asyncio.run(scenario())
