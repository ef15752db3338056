"""Admission's side of budgets: price a request's worst case, reserve it, settle what it used."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN

from modelplex.billing.contracts import BudgetStatus, KeyAuthority, Principal, TokenPrice
from modelplex.gateway.budgets.amounts import (
    Amount,
    budget_of,
    month_key,
    reservation,
    to_nanos,
    used,
    used_shares,
    worst_case,
)
from modelplex.gateway.budgets.keeper import BudgetExceeded, BudgetKeeper, Hold, Refusal
from modelplex.gateway.discovery.base import ModelSpec
from modelplex.gateway.errors import GatewayError, budget_exhausted, ledger_unreachable
from modelplex.gateway.inference import InferenceRequest, Kind
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.sse import Usage

log = logging.getLogger(__name__)

RESERVATIONS_RETRY_SECONDS = 1.0


class Reservations:
    def __init__(
        self,
        authority: KeyAuthority,
        keeper: BudgetKeeper,
        cache_seconds: float,
        default_context_tokens: int,
        prompt_overhead_tokens: int,
        metrics: GatewayMetrics,
    ) -> None:
        self._authority = authority
        self._keeper = keeper
        self._ttl = cache_seconds
        self._default_context = default_context_tokens
        self._overhead = prompt_overhead_tokens
        self._metrics = metrics
        self._statuses: dict[str, tuple[float, BudgetStatus]] = {}

    async def reserve(
        self, principal: Principal, request: InferenceRequest, spec: ModelSpec, request_id: str
    ) -> Hold | None:
        """The request's worst case, held against the tenant's month; None when it has no budget."""
        limits = principal.limits
        budget = budget_of(limits)
        if not budget.limited:
            return None
        try:
            status = await self._status(principal)
            price = await self._authority.price(spec.name) if budget.nanos is not None else None
        except Exception as exc:  # the ledger is down and has never answered for this tenant or model
            log.error("Failed reading a budget tenant=%s error=%s", principal.tenant_id, type(exc).__name__)
            self._metrics.ledger_failures.labels("budget").inc()
            raise ledger_unreachable("check the tenant's budget") from None
        case = worst_case(
            request.body_bytes + self._overhead * request.prompts,
            request.prompts,
            request.max_tokens,
            request.choices,
            spec.max_model_len or self._default_context,
            request.kind is not Kind.EMBEDDING,
        )
        wanted = reservation(case, price, limits.currency)
        ledger_used = Amount(status.tokens_used, to_nanos(status.spend_used, ROUND_HALF_EVEN))
        month = month_key(datetime.now(UTC))
        try:
            return await self._keeper.reserve(
                principal.tenant_id, request_id, month, budget, ledger_used, wanted
            )
        except BudgetExceeded as exc:
            raise refused(exc.refusal, limits.currency) from None

    async def settle(self, hold: Hold | None, principal: Principal, model: str, usage: Usage) -> None:
        if hold is None:
            return
        price = await self._price_for_settle(principal, model)
        currency = principal.limits.currency
        actual = used(usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, price, currency)
        try:
            await self._keeper.settle(hold, actual)
        except Exception as exc:  # the hold expires on its own; the ledger counts the usage later
            log.error("Failed settling budget tenant=%s error=%s", hold.tenant_id, type(exc).__name__)

    async def _price_for_settle(self, principal: Principal, model: str) -> TokenPrice | None:
        if principal.limits.monthly_spend_budget is None:
            return None
        try:
            return await self._authority.price(model)
        except Exception:  # priced at reservation time, so this is cached; if not, count tokens only
            return None

    async def _status(self, principal: Principal) -> BudgetStatus:
        tenant_id = principal.tenant_id
        now = time.monotonic()
        cached = self._statuses.get(tenant_id)
        if cached is None or now - cached[0] > self._ttl:
            cached = (now, await self._authority.budget(tenant_id))
            self._statuses[tenant_id] = cached
            shares = used_shares(principal.limits, cached[1])
            self._metrics.budget_use.observe(tenant_id, month_key(datetime.now(UTC)), shares)
        return cached[1]


def refused(refusal: Refusal, currency: str) -> GatewayError:
    """429 insufficient_quota saying what the request could use and what is left."""
    if refusal.budget == "token":
        wanted, left, held = refusal.wanted.tokens, refusal.remaining.tokens, refusal.reserved.tokens
        what = f"up to {wanted} tokens", f"{max(left, 0)} tokens"
    else:
        wanted, left, held = refusal.wanted.nanos, refusal.remaining.nanos, refusal.reserved.nanos
        what = f"up to {_money(wanted)} {currency}", f"{_money(max(left, 0))} {currency}"
    final = left + held < wanted  # even with every request in flight given back, it would not fit
    message = (
        f"The tenant's monthly {refusal.budget} budget cannot cover this request: it could use "
        f"{what[0]} (its prompt and max_tokens, or the model's context length without max_tokens), "
        f"and {what[1]} remain"
        + (", part of it held by requests in flight." if held > 0 and not final else ".")
    )
    retry = seconds_to_next_month() if final else RESERVATIONS_RETRY_SECONDS
    return budget_exhausted(message, retry, final)


def _money(nanos: int) -> str:
    return f"{nanos / 1_000_000_000:.6f}".rstrip("0").rstrip(".")


def seconds_to_next_month(now: datetime | None = None) -> float:
    now = now or datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return (following - now).total_seconds()
