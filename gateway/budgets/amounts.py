"""Pure budget arithmetic: a request's worst-case amount, what it actually used, and whether it fits.

Spend is kept as an integer count of nano-units of the plan's currency (1e-9), so that the in-process
and the Redis keepers do the same exact integer arithmetic (Lua numbers are doubles: integers are exact
up to 2**53 nano-units, about nine million currency units). Reservations round up, actual use rounds
to the nearest nano-unit: the difference from the ledger's exact Decimal is below a billionth per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from modelplex.billing.contracts import BudgetStatus, PlanLimits, TokenPrice

NANO = Decimal(1_000_000_000)
PER_TOKEN = Decimal(1_000_000)  # prices are per 1M tokens


@dataclass(frozen=True, slots=True)
class Amount:
    tokens: int
    nanos: int  # spend in 1e-9 of the plan's currency

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.tokens + other.tokens, self.nanos + other.nanos)

    def __sub__(self, other: Amount) -> Amount:
        return Amount(self.tokens - other.tokens, self.nanos - other.nanos)

    def at_least(self, other: Amount) -> Amount:
        return Amount(max(self.tokens, other.tokens), max(self.nanos, other.nanos))


NOTHING = Amount(0, 0)


@dataclass(frozen=True, slots=True)
class WorstCase:
    """The most a request can use: its prompt bound and its completion bound, in tokens."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Budget:
    """A tenant's monthly budgets in keeper units; None: no such budget."""

    tokens: int | None
    nanos: int | None

    @property
    def limited(self) -> bool:
        return self.tokens is not None or self.nanos is not None


def budget_of(limits: PlanLimits) -> Budget:
    spend = limits.monthly_spend_budget
    return Budget(limits.monthly_token_budget, None if spend is None else to_nanos(spend, ROUND_HALF_EVEN))


def used_shares(limits: PlanLimits, status: BudgetStatus) -> dict[str, float]:
    """The share of each monthly budget the ledger counts as used, by budget ("token", "spend"):
    1.0 is all of it (more once requests in flight overran it); a budget of zero is all used."""
    shares: dict[str, float] = {}
    tokens, spend = limits.monthly_token_budget, limits.monthly_spend_budget
    if tokens is not None:
        shares["token"] = status.tokens_used / tokens if tokens > 0 else 1.0
    if spend is not None:
        shares["spend"] = float(status.spend_used / spend) if spend > 0 else 1.0
    return shares


def worst_case(
    prompt_bound: int,
    prompts: int,
    max_tokens: int | None,
    choices: int,
    context_tokens: int,
    generates: bool,
) -> WorstCase:
    """The engine refuses a prompt longer than the context length, and stops each sequence at
    `max_tokens` or at the context length, whichever comes first."""
    prompt = min(prompt_bound, prompts * context_tokens)
    if not generates:
        return WorstCase(prompt, 0)
    per_sequence = context_tokens if max_tokens is None else min(max_tokens, context_tokens)
    return WorstCase(prompt, prompts * choices * per_sequence)


def reservation(case: WorstCase, price: TokenPrice | None, currency: str) -> Amount:
    """The worst case priced at today's price (prompt at the uncached input price); an unpriced model,
    or one priced in another currency than the plan's, costs nothing, as on the invoice."""
    if price is None or price.currency != currency:
        return Amount(case.tokens, 0)
    cost = case.prompt_tokens * price.input_per_1m + case.completion_tokens * price.output_per_1m
    return Amount(case.tokens, to_nanos(cost / PER_TOKEN, ROUND_CEILING))


def used(
    prompt_tokens: int, cached_tokens: int, completion_tokens: int, price: TokenPrice | None, currency: str
) -> Amount:
    """What a finished request cost, the way the ledger prices it (cached tokens are part of the prompt)."""
    tokens = prompt_tokens + completion_tokens
    if price is None or price.currency != currency:
        return Amount(tokens, 0)
    uncached = max(prompt_tokens - cached_tokens, 0)
    cost = (
        uncached * price.input_per_1m
        + cached_tokens * price.cached_input_per_1m
        + completion_tokens * price.output_per_1m
    )
    return Amount(tokens, to_nanos(cost / PER_TOKEN, ROUND_HALF_EVEN))


def shortfall(budget: Budget, committed: Amount, wanted: Amount) -> str | None:
    """None when `wanted` fits beside what is already used and reserved; else which budget it breaks."""
    after = committed + wanted
    if budget.tokens is not None and after.tokens > budget.tokens:
        return "token"
    if budget.nanos is not None and after.nanos > budget.nanos:
        return "spend"
    return None


def to_nanos(amount: Decimal, rounding: str) -> int:
    return int((amount * NANO).to_integral_value(rounding=rounding))


def month_key(now: datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"
