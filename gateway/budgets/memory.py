"""Budgets kept in this process (one gateway replica)."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelplex.gateway.budgets.amounts import NOTHING, Amount, Budget, shortfall
from modelplex.gateway.budgets.keeper import BudgetExceeded, Hold, Refusal


@dataclass(slots=True)
class Month:
    used: Amount
    reserved: Amount = NOTHING
    holds: dict[str, Amount] = field(default_factory=dict)


class MemoryBudgets:
    def __init__(self) -> None:
        self._months: dict[tuple[str, str], Month] = {}

    async def reserve(
        self, tenant_id: str, request_id: str, month: str, budget: Budget, ledger_used: Amount, wanted: Amount
    ) -> Hold:
        state = self._months.get((tenant_id, month))
        if state is None:
            self._forget_other_months(tenant_id, month)
            state = self._months[(tenant_id, month)] = Month(ledger_used)
        state.used = state.used.at_least(ledger_used)
        committed = state.used + state.reserved
        broken = shortfall(budget, committed, wanted)
        if broken is not None:
            remaining = Amount((budget.tokens or 0) - committed.tokens, (budget.nanos or 0) - committed.nanos)
            raise BudgetExceeded(Refusal(broken, wanted, remaining, state.reserved))
        state.reserved += wanted
        state.holds[request_id] = wanted
        return Hold(tenant_id, request_id, month, wanted)

    async def settle(self, hold: Hold, actual: Amount) -> None:
        state = self._months.get((hold.tenant_id, hold.month))
        if state is None or state.holds.pop(hold.request_id, None) is None:
            return
        state.reserved -= hold.amount
        state.used += actual

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _forget_other_months(self, tenant_id: str, month: str) -> None:
        for key in [k for k in self._months if k[0] == tenant_id and k[1] != month]:
            if not self._months[key].holds:
                del self._months[key]
