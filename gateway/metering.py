"""Metering: what one request served, turned into exactly one usage event, journaled and counted."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelplex.billing.contracts import Outcome, Principal, UsageEvent
from modelplex.gateway.inflight import InFlightTable
from modelplex.gateway.journal import Journal, JournalUnwritable
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.sse import Usage

log = logging.getLogger(__name__)


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
    dispatched: bool = False  # sent to a replica: from here on, exactly one usage event
    recorded: bool = False
    slot: int = -1  # in the in-flight table

    def first_byte(self) -> None:
        if self.ttft_seconds is None:
            self.ttft_seconds = time.perf_counter() - self.t0

    @property
    def total_tokens(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens

    @property
    def identity(self) -> dict[str, str]:
        return {
            "request_id": self.request_id,
            "tenant_id": self.principal.tenant_id,
            "key_id": self.principal.key_id,
            "model": self.model,
            "deployment": self.deployment,
            "replica": self.replica,
            "started_at": self.started_at.isoformat(),
        }

    def counters(self) -> tuple[int, int, int, float]:
        ttft = math.nan if self.ttft_seconds is None else self.ttft_seconds * 1000
        usage = self.usage
        return usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, ttft

    def event(self, outcome: Outcome) -> UsageEvent:
        duration = time.perf_counter() - self.t0
        return trusted_event(
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


_EVENT_FIELDS = frozenset(UsageEvent.model_fields)


def trusted_event(**fields: Any) -> UsageEvent:
    """A UsageEvent from fields the gateway computed itself, every one given: what `model_construct`
    makes, at a third of its cost (it loops over the fields looking for defaults and aliases)."""
    event = object.__new__(UsageEvent)
    object.__setattr__(event, "__dict__", fields)
    object.__setattr__(event, "__pydantic_fields_set__", _EVENT_FIELDS)
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event


class Recorder:
    """Tracks dispatched requests in flight, journals each one's usage event (once), counts its tokens.

    When the journal cannot be written (a full disk), a finished request's event waits in memory and
    its slot in the in-flight table stays taken (so a crash meanwhile still bills it); `retry` journals
    the waiting events once the disk takes them again. Meanwhile `unwritable` is set, and the gateway
    refuses new requests rather than serve what it could not bill.
    """

    def __init__(self, journal: Journal, inflight: InFlightTable, metrics: GatewayMetrics) -> None:
        self._journal = journal
        self._inflight = inflight
        self._metrics = metrics
        self._waiting: list[tuple[UsageEvent, Meter]] = []
        self.unwritable = False

    def _unwritable(self, error: JournalUnwritable) -> None:
        if not self.unwritable:
            log.error("Failed writing the usage journal error=%s; refusing new requests meanwhile", error)
        self.unwritable = True
        self._metrics.journal_unwritable.set(1)
        self._metrics.journal_write_failures.inc()

    def retry(self) -> int:
        """Journal the events that waited for the disk; how many are still waiting."""
        while self._waiting:
            event, meter = self._waiting[0]
            try:
                self._journal.append(event)
            except JournalUnwritable as error:
                self._unwritable(error)
                break
            self._waiting.pop(0)
            self._inflight.release(meter)
        self._metrics.journal_pending.set(len(self._waiting))
        if not self._waiting and self.unwritable:
            self.unwritable = False
            self._metrics.journal_unwritable.set(0)
            log.warning("Resumed writing the usage journal")
        return len(self._waiting)

    def dispatched(self, meter: Meter) -> None:
        """The request is about to be sent to `meter.replica` (again, after a retry)."""
        self._inflight.track(meter)  # first: a table that cannot grow (disk full) sends nothing
        meter.dispatched = True

    def progressed(self, meter: Meter) -> None:
        """The engine reported (cumulative) usage."""
        self._inflight.update(meter)

    def record(self, meter: Meter, outcome: Outcome) -> UsageEvent | None:
        if meter.recorded or not meter.dispatched:
            return None
        meter.recorded = True
        event = meter.event(outcome)
        self._count(event, meter.ttft_seconds)
        if self._waiting:  # keep the journal in order: behind the ones already waiting
            self._waiting.append((event, meter))
            self.retry()
            return event
        try:
            self._journal.append(event)
        except JournalUnwritable as error:
            self._waiting.append((event, meter))
            self._metrics.journal_pending.set(len(self._waiting))
            self._unwritable(error)
            return event
        self._inflight.release(meter)  # after the append: a kill in between only makes a duplicate
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
        self._metrics.duration.labels(tenant, model).observe(event.duration_ms / 1000)
        if ttft is not None:
            self._metrics.ttft.labels(tenant, model).observe(ttft)
