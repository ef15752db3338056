"""The keeper interface: reserve a request's worst case against its tenant's month, settle it after.

Per tenant and month a keeper holds `used` (what settled requests cost) and the open reservations.
`used` starts from the ledger's reading and is raised to it whenever the ledger reads higher (it does
once usage that bypassed this keeper, e.g. from a crashed gateway, has been shipped): both are lower
bounds of the truth, so the larger is the better one and nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelplex.gateway.budgets.amounts import Amount, Budget


@dataclass(frozen=True, slots=True)
class Hold:
    """One request's reservation, so that `settle` can release it."""

    tenant_id: str
    request_id: str
    month: str
    amount: Amount


@dataclass(frozen=True, slots=True)
class Refusal:
    budget: str  # "token" or "spend"
    wanted: Amount
    remaining: Amount  # budget - used - reserved (may be negative); 0 where there is no budget
    reserved: Amount  # by requests in flight, which may give some back when they end


class BudgetExceeded(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.budget)
        self.refusal = refusal


class BudgetKeeper(Protocol):
    async def reserve(
        self, tenant_id: str, request_id: str, month: str, budget: Budget, ledger_used: Amount, wanted: Amount
    ) -> Hold:
        """Reserve `wanted`, or raise BudgetExceeded (reserving nothing)."""
        ...

    async def settle(self, hold: Hold, actual: Amount) -> None:
        """Release the reservation and count what the request actually used."""
        ...

    async def run(self) -> None:
        """Background upkeep while the gateway runs (renewing holds); returns at once if none."""
        ...

    async def close(self) -> None: ...
