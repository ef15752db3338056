"""Usage events as the gateway meters them, for ledger tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelplex.billing.contracts import Outcome, UsageEvent


def usage_event(
    request_id: str,
    *,
    tenant_id: str = "tnt_a",
    model: str = "m1",
    at: datetime = datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
    prompt: int = 1000,
    cached: int = 0,
    completion: int = 500,
    outcome: Outcome = Outcome.COMPLETED,
) -> UsageEvent:
    """A usage event as the gateway meters it."""
    return UsageEvent(
        request_id=request_id,
        tenant_id=tenant_id,
        key_id="key_a",
        model=model,
        deployment="default/" + model,
        replica=model + "-0",
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        outcome=outcome,
        started_at=at,
        finished_at=at + timedelta(seconds=2),
        ttft_ms=120.0,
        duration_ms=2000.0,
    )
