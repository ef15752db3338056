"""Shared limits that fall back to this replica's own while the shared store is unreachable.

A Redis outage must not stop serving, and must not lift every limit either: while Redis is away each
gateway replica enforces every limit by itself (so N replicas admit at most N times a limit), and it
tries Redis again after `retry_seconds`. A request is settled where it was admitted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import Limiter, LimitExceeded, Ticket
from modelplex.gateway.limits.outage import Outage


class FallbackLimiter:
    def __init__(
        self,
        shared: Limiter,
        local: Limiter,
        retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._local = local
        self._outage = Outage("limits", retry_seconds, clock)
        self._admitted_locally: set[str] = set()

    @property
    def degraded(self) -> bool:
        return self._outage.degraded

    async def admit(
        self, tenant_id: str, request_id: str, limits: PlanLimits, estimated_tokens: int
    ) -> Ticket:
        if self._outage.should_try():
            try:
                ticket = await self._shared.admit(tenant_id, request_id, limits, estimated_tokens)
            except LimitExceeded:
                self._outage.recovered()
                raise
            except Exception as exc:
                self._outage.failed(exc)
            else:
                self._outage.recovered()
                return ticket
        ticket = await self._local.admit(tenant_id, request_id, limits, estimated_tokens)
        self._admitted_locally.add(request_id)
        return ticket

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        if ticket.request_id in self._admitted_locally:
            self._admitted_locally.discard(ticket.request_id)
            await self._local.settle(ticket, actual_tokens)
        else:
            await self._shared.settle(ticket, actual_tokens)

    async def run(self) -> None:
        await self._shared.run()

    async def close(self) -> None:
        await self._shared.close()
        await self._local.close()
