"""Who may do what: API key, tenant state, model access, rate limits (budgets: gateway.budgets)."""

from __future__ import annotations

import logging

from modelplex.billing.contracts import KeyAuthority, Principal
from modelplex.gateway.asgi import Scope
from modelplex.gateway.bearer import authorization_values
from modelplex.gateway.discovery.base import ModelSpec
from modelplex.gateway.errors import (
    forbidden,
    ledger_unreachable,
    model_not_found,
    rate_limited,
    unauthorized,
)
from modelplex.gateway.limits.base import Limiter, LimitExceeded, Ticket
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.pool import Pool

log = logging.getLogger(__name__)


def bearer_key(scope: Scope) -> str | None:
    """The API key of the one `Authorization: Bearer` header; two headers are refused (proxies and
    frameworks disagree on which one counts, so either could be the one that was checked)."""
    values = authorization_values(scope)
    if len(values) > 1:
        raise unauthorized("Send exactly one Authorization header.")
    if not values:
        return None
    scheme, _, token = values[0].decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def may_use(principal: Principal, spec: ModelSpec) -> bool:
    """A model is usable when its access list (empty: everyone) and the tenant's plan both allow it."""
    allowed = principal.limits.allowed_models
    plan_allows = allowed is None or spec.name in allowed
    return plan_allows and spec.allows(principal.tenant_id, principal.tenant_name)


class Admission:
    def __init__(
        self, authority: KeyAuthority, limiter: Limiter, pool: Pool, metrics: GatewayMetrics
    ) -> None:
        self._authority = authority
        self._limiter = limiter
        self._pool = pool
        self._metrics = metrics

    async def authenticate(self, scope: Scope) -> Principal:
        key = bearer_key(scope)
        if key is None:
            raise unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
        try:
            principal = await self._authority.authenticate(key)
        except Exception as exc:  # the ledger is down and this key was never seen: it cannot be checked
            log.error("Failed checking an API key error=%s", type(exc).__name__)
            self._metrics.ledger_failures.labels("authenticate").inc()
            raise ledger_unreachable("check the API key") from None
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
