"""Shared limits that fall back to this replica's own while the shared store is unreachable.

A Redis outage must not stop serving, and must not lift every limit either: while Redis is away each
gateway replica enforces every limit by itself (so N replicas admit at most N times a limit), and it
tries Redis again after `retry_seconds`. A request is settled where it was admitted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import Limiter, LimitExceeded, Ticket

log = logging.getLogger(__name__)


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
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._shared_down_until: float | None = None  # None: the shared store is in use
        self._admitted_locally: set[str] = set()

    @property
    def degraded(self) -> bool:
        return self._shared_down_until is not None

    async def admit(
        self, tenant_id: str, request_id: str, limits: PlanLimits, estimated_tokens: int
    ) -> Ticket:
        if self._shared_down_until is None or self._clock() >= self._shared_down_until:
            try:
                ticket = await self._shared.admit(tenant_id, request_id, limits, estimated_tokens)
            except LimitExceeded:
                self._recovered()
                raise
            except Exception as exc:
                self._failed(exc)
            else:
                self._recovered()
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

    def _failed(self, error: Exception) -> None:
        if self._shared_down_until is None:
            log.error(
                "Failed reaching shared limits error=%s; enforcing this replica's own limits, retry_in=%.0fs",
                type(error).__name__,
                self._retry_seconds,
            )
        self._shared_down_until = self._clock() + self._retry_seconds

    def _recovered(self) -> None:
        if self._shared_down_until is not None:
            log.warning("Reconnected to shared limits")
            self._shared_down_until = None
