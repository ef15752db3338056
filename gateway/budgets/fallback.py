"""Shared budgets that fall back to this replica's own while Redis is unreachable.

During an outage each replica keeps budgets alone, from the ledger's reading plus what it admitted
itself, so N replicas may together reserve up to N times what is left; a hold is settled where it was
taken. Shared state resumes when Redis answers again (what settled locally reaches it through the
ledger, as every `reserve` raises `used` to the ledger's reading).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from modelplex.gateway.budgets.amounts import Amount, Budget
from modelplex.gateway.budgets.keeper import BudgetExceeded, BudgetKeeper, Hold
from modelplex.gateway.limits.outage import Outage


class FallbackBudgets:
    def __init__(
        self,
        shared: BudgetKeeper,
        local: BudgetKeeper,
        retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._local = local
        self._outage = Outage("budgets", retry_seconds, clock)
        self._held_locally: set[str] = set()

    @property
    def degraded(self) -> bool:
        return self._outage.degraded

    async def reserve(
        self, tenant_id: str, request_id: str, month: str, budget: Budget, ledger_used: Amount, wanted: Amount
    ) -> Hold:
        if self._outage.should_try():
            try:
                hold = await self._shared.reserve(tenant_id, request_id, month, budget, ledger_used, wanted)
            except BudgetExceeded:
                self._outage.recovered()
                raise
            except Exception as exc:
                self._outage.failed(exc)
            else:
                self._outage.recovered()
                return hold
        hold = await self._local.reserve(tenant_id, request_id, month, budget, ledger_used, wanted)
        self._held_locally.add(request_id)
        return hold

    async def settle(self, hold: Hold, actual: Amount) -> None:
        if hold.request_id in self._held_locally:
            self._held_locally.discard(hold.request_id)
            await self._local.settle(hold, actual)
        else:
            await self._shared.settle(hold, actual)

    async def run(self) -> None:
        await self._shared.run()

    async def close(self) -> None:
        await self._shared.close()
        await self._local.close()
