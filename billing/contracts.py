"""The seam between the gateway and the ledger.

The gateway depends only on these types and protocols; the ledger implements them. Keeping them in
one small module lets each side be tested alone (in-memory implementations in unit tests) and
together (the real ledger on SQLite and PostgreSQL).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Outcome(enum.StrEnum):
    """How a request ended. Every outcome is billed for the tokens actually served."""

    COMPLETED = "completed"
    ABORTED = "aborted"  # the client went away mid-request
    FAILED = "failed"  # the upstream engine failed


class PlanLimits(Frozen):
    """A tenant's limits; None means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_requests: int | None = None
    monthly_token_budget: int | None = None
    monthly_spend_budget: Decimal | None = None
    currency: str = "USD"  # of the spend budget; usage priced in another currency does not count
    allowed_models: frozenset[str] | None = None  # None: every model the deployment's access allows


class Principal(Frozen):
    """Who is calling: the result of checking an API key."""

    tenant_id: str
    tenant_name: str
    key_id: str
    tenant_suspended: bool = False  # a valid key of a suspended tenant: the gateway answers 403
    limits: PlanLimits


class BudgetStatus(Frozen):
    """What a tenant has used of its monthly budget in the current calendar month (UTC)."""

    tokens_used: int
    spend_used: Decimal
    tokens_remaining: int | None  # None: no token budget
    spend_remaining: Decimal | None  # None: no spend budget

    @property
    def exhausted(self) -> bool:
        return (self.tokens_remaining is not None and self.tokens_remaining <= 0) or (
            self.spend_remaining is not None and self.spend_remaining <= 0
        )


class TokenPrice(Frozen):
    """A model's price in force now, per 1M tokens (what budget reservations are priced at)."""

    currency: str
    input_per_1m: Decimal
    cached_input_per_1m: Decimal
    output_per_1m: Decimal


class UsageEvent(Frozen):
    """One served request, exactly as metered by the gateway. `request_id` makes ingest idempotent."""

    request_id: str = Field(min_length=1, max_length=128)
    tenant_id: str
    key_id: str
    model: str
    deployment: str
    replica: str
    prompt_tokens: int = Field(ge=0)
    cached_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    outcome: Outcome
    started_at: datetime
    finished_at: datetime
    ttft_ms: float | None = Field(default=None, ge=0)
    duration_ms: float = Field(ge=0)


class KeyAuthority(Protocol):
    """Checks API keys and budgets. Implementations may cache; revocation must show within seconds."""

    async def authenticate(self, api_key: str) -> Principal | None:
        """The principal for a valid key; None for an unknown, revoked or expired key."""
        ...

    async def budget(self, tenant_id: str) -> BudgetStatus: ...

    async def price(self, model: str) -> TokenPrice | None:
        """The model's price in force now; None when it has none."""
        ...


class UsageSink(Protocol):
    """Where metered usage goes. Batches are written in one transaction; duplicates are ignored."""

    async def ingest(self, events: Sequence[UsageEvent]) -> int:
        """Store the events; return how many were new (duplicate request_ids are skipped)."""
        ...
