"""A `KeyAuthority` from a fixed list of tenants: for a gateway without a ledger (benchmarks, development,
tests). Production uses the ledger's authority through the same protocol."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelplex.billing.contracts import BudgetStatus, PlanLimits, Principal, TokenPrice


class StaticTenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    name: str = Field(min_length=1)
    id: str | None = None  # default: the name
    keys: tuple[str, ...] = ()
    suspended: bool = False
    limits: PlanLimits = PlanLimits()

    @property
    def tenant_id(self) -> str:
        return self.id or self.name


def key_id(api_key: str) -> str:
    """A non-secret identifier of a key (safe for logs and usage rows)."""
    return "key-" + _digest(api_key)[:12]


def _digest(api_key: str) -> str:
    # Keys are looked up by their digest, never compared as text: the time a lookup takes cannot tell
    # how much of a guess matched a real key.
    return hashlib.sha256(api_key.encode()).hexdigest()


class StaticKeyAuthority:
    """Keys held in memory. Mutable so that tests can revoke keys, suspend tenants and use up budgets."""

    def __init__(self, tenants: Iterable[StaticTenant] = ()) -> None:
        self._tenants: dict[str, StaticTenant] = {}
        self._by_key: dict[str, str] = {}  # key digest -> tenant id
        self._principals: dict[str, Principal] = {}  # key digest -> its (immutable) principal
        self._used: dict[str, tuple[int, Decimal]] = {}
        self._prices: dict[str, TokenPrice] = {}
        for tenant in tenants:
            self.put(tenant)

    def put(self, tenant: StaticTenant) -> None:
        self._tenants[tenant.tenant_id] = tenant
        self._principals.clear()
        self._by_key = {k: v for k, v in self._by_key.items() if v != tenant.tenant_id}
        self._by_key.update((_digest(key), tenant.tenant_id) for key in tenant.keys)

    def revoke(self, api_key: str) -> None:
        self._by_key.pop(_digest(api_key), None)
        self._principals.clear()

    def set_used(self, tenant_id: str, tokens: int, spend: Decimal = Decimal(0)) -> None:
        self._used[tenant_id] = (tokens, spend)

    def set_price(self, model: str, price: TokenPrice) -> None:
        self._prices[model] = price

    async def authenticate(self, api_key: str) -> Principal | None:
        digest = _digest(api_key)
        principal = self._principals.get(digest)
        if principal is not None:
            return principal
        tenant_id = self._by_key.get(digest)
        if tenant_id is None:
            return None
        tenant = self._tenants[tenant_id]
        principal = self._principals[digest] = Principal.model_construct(  # from the validated tenant
            tenant_id=tenant_id,
            tenant_name=tenant.name,
            key_id="key-" + digest[:12],
            tenant_suspended=tenant.suspended,
            limits=tenant.limits,
        )
        return principal

    async def budget(self, tenant_id: str) -> BudgetStatus:
        limits = self._tenants[tenant_id].limits
        tokens, spend = self._used.get(tenant_id, (0, Decimal(0)))
        token_budget, spend_budget = limits.monthly_token_budget, limits.monthly_spend_budget
        return BudgetStatus(
            tokens_used=tokens,
            spend_used=spend,
            tokens_remaining=None if token_budget is None else token_budget - tokens,
            spend_remaining=None if spend_budget is None else spend_budget - spend,
        )

    async def price(self, model: str) -> TokenPrice | None:
        return self._prices.get(model)  # none unless a test sets one: spend budgets count nothing
