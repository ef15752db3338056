"""Who may do what: API key, tenant state, model access, monthly budget, rate limits."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from modelplex.billing.contracts import BudgetStatus, KeyAuthority, Principal
from modelplex.gateway.asgi import Scope, header
from modelplex.gateway.discovery.base import ModelSpec
from modelplex.gateway.errors import budget_exhausted, forbidden, model_not_found, rate_limited, unauthorized
from modelplex.gateway.limits.base import Limiter, LimitExceeded, Ticket
from modelplex.gateway.pool import Pool

log = logging.getLogger(__name__)


def bearer_key(scope: Scope) -> str | None:
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def may_use(principal: Principal, spec: ModelSpec) -> bool:
    """A model is usable when its access list (empty: everyone) and the tenant's plan both allow it."""
    allowed = principal.limits.allowed_models
    plan_allows = allowed is None or spec.name in allowed
    return plan_allows and spec.allows(principal.tenant_id, principal.tenant_name)


class Admission:
    def __init__(
        self, authority: KeyAuthority, limiter: Limiter, pool: Pool, budget_cache_seconds: float
    ) -> None:
        self._authority = authority
        self._limiter = limiter
        self._pool = pool
        self._budget_ttl = budget_cache_seconds
        self._budgets: dict[str, tuple[float, BudgetStatus]] = {}

    async def authenticate(self, scope: Scope) -> Principal:
        key = bearer_key(scope)
        if key is None:
            raise unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
        principal = await self._authority.authenticate(key)
        if principal is None:
            raise unauthorized("Invalid or revoked API key.")
        if principal.tenant_suspended:
            raise forbidden("The tenant is suspended.", "tenant_suspended")
        return principal

    def model(self, principal: Principal, model: str) -> ModelSpec:
        spec = self._pool.spec(model)
        if spec is None:
            raise model_not_found(model)
        if not may_use(principal, spec):
            raise forbidden(f"The tenant may not use the model '{model}'.", "model_not_allowed")
        return spec

    async def check_budget(self, principal: Principal) -> None:
        limits = principal.limits
        if limits.monthly_token_budget is None and limits.monthly_spend_budget is None:
            return
        now = time.monotonic()
        cached = self._budgets.get(principal.tenant_id)
        if cached is None or now - cached[0] > self._budget_ttl:
            cached = (now, await self._authority.budget(principal.tenant_id))
            self._budgets[principal.tenant_id] = cached
        if cached[1].exhausted:
            raise budget_exhausted(seconds_to_next_month())

    async def admit(self, principal: Principal, request_id: str, estimated_tokens: int) -> Ticket:
        tenant = principal.tenant_id
        try:
            return await self._limiter.admit(tenant, request_id, principal.limits, estimated_tokens)
        except LimitExceeded as exc:
            raise rate_limited(exc.denial.limit, exc.denial.retry_after) from None
        except Exception as exc:  # a broken limiter must not stop serving (Redis outages: FallbackLimiter)
            log.error(
                "Failed checking limits tenant=%s error=%s; admitted unchecked", tenant, type(exc).__name__
            )
            return Ticket(tenant, request_id, estimated_tokens, None, False)

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        try:
            await self._limiter.settle(ticket, actual_tokens)
        except Exception as exc:
            log.error("Failed settling limits tenant=%s error=%s", ticket.tenant_id, type(exc).__name__)


def seconds_to_next_month(now: datetime | None = None) -> float:
    now = now or datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return (following - now).total_seconds()
