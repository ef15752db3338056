"""Metering: what one request served, turned into exactly one usage event, journaled and counted."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modelplex.billing.contracts import Outcome, Principal, UsageEvent
from modelplex.gateway.journal import Journal
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.sse import Usage


@dataclass(slots=True)
class Meter:
    request_id: str
    principal: Principal
    model: str
    deployment: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    t0: float = field(default_factory=time.perf_counter)
    replica: str = ""
    usage: Usage = field(default_factory=Usage)
    ttft_seconds: float | None = None
    recorded: bool = False

    def first_byte(self) -> None:
        if self.ttft_seconds is None:
            self.ttft_seconds = time.perf_counter() - self.t0

    @property
    def total_tokens(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens

    def event(self, outcome: Outcome) -> UsageEvent:
        duration = time.perf_counter() - self.t0
        return UsageEvent(
            request_id=self.request_id,
            tenant_id=self.principal.tenant_id,
            key_id=self.principal.key_id,
            model=self.model,
            deployment=self.deployment,
            replica=self.replica,
            prompt_tokens=self.usage.prompt_tokens,
            cached_tokens=self.usage.cached_tokens,
            completion_tokens=self.usage.completion_tokens,
            outcome=outcome,
            started_at=self.started_at,
            finished_at=self.started_at + timedelta(seconds=duration),
            ttft_ms=None if self.ttft_seconds is None else self.ttft_seconds * 1000,
            duration_ms=duration * 1000,
        )


class Recorder:
    """Journals each request's usage event (once) and counts its tokens."""

    def __init__(self, journal: Journal, metrics: GatewayMetrics) -> None:
        self._journal = journal
        self._metrics = metrics

    def record(self, meter: Meter, outcome: Outcome) -> UsageEvent | None:
        if meter.recorded:
            return None
        meter.recorded = True
        event = meter.event(outcome)
        self._journal.append(event)
        self._count(event, meter.ttft_seconds)
        return event

    def _count(self, event: UsageEvent, ttft: float | None) -> None:
        tokens = self._metrics.tokens
        tenant, model = event.tenant_id, event.model
        if event.prompt_tokens:
            tokens.labels(tenant, model, "prompt").inc(event.prompt_tokens)
        if event.cached_tokens:
            tokens.labels(tenant, model, "cached").inc(event.cached_tokens)
        if event.completion_tokens:
            tokens.labels(tenant, model, "completion").inc(event.completion_tokens)
        self._metrics.duration.labels(model).observe(event.duration_ms / 1000)
        if ttft is not None:
            self._metrics.ttft.labels(model).observe(ttft)
