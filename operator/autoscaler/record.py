"""What the autoscaler remembers of one model, and how it shows in the status (pure).

The autoscaler does not write the status itself: the controller is the status's only writer, and it
takes each model's `ScalingView` from here when it computes the rest (so the two never overwrite
each other's conditions).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from modelplex.crds.status import (
    ABLE_TO_SCALE,
    MAX_DECISIONS,
    SCALING_ACTIVE,
    SCALING_LIMITED,
    Reason,
    ScalingDecision,
    ScalingSignals,
    ScalingStatus,
)
from modelplex.operator.autoscaler.policy import Decision, History, Signals, Why

Value = tuple[bool, str, str]  # a condition's status, reason and message


@dataclass(frozen=True)
class ScalingView:
    status: ScalingStatus
    conditions: dict[str, Value]


@dataclass
class ModelRecord:
    """One model's autoscaler state between decisions."""

    history: History = field(default_factory=History)
    decisions: deque[ScalingDecision] = field(default_factory=lambda: deque(maxlen=MAX_DECISIONS))
    desired: int | None = None
    written: int | None = None  # the replicas this autoscaler last wrote
    last_scale_time: str | None = None
    answered: dict[str, float] = field(default_factory=dict)  # per gateway, at the previous reading
    write_error: str | None = None
    last: Decision | None = None
    model: str | None = None  # its served name, for the metrics' labels
    signals: Signals | None = None  # of the last reading
    read_at: str | None = None  # when it was made (RFC 3339)

    def read(self, decision: Decision, signals: Signals, model: str, now: str) -> None:
        """Keep what one reading found and decided."""
        self.history, self.last, self.desired = decision.history, decision, decision.replicas
        self.model, self.signals, self.read_at = model, signals, now

    def scaled(self, decision: Decision, before: int, signals: Signals, now: str) -> ScalingDecision:
        entry = ScalingDecision(
            time=now,
            from_replicas=before,
            to=decision.replicas,
            reason=decision.reason,
            message=decision.message[:1024],
            signals=signals_of(signals),
        )
        self.decisions.append(entry)
        self.written, self.last_scale_time, self.write_error = decision.replicas, now, None
        return entry

    def view(self) -> ScalingView | None:
        if self.last is None:
            return None
        status = ScalingStatus(
            desired_replicas=self.desired if self.desired is not None else self.last.replicas,
            last_scale_time=self.last_scale_time,
            decisions=list(self.decisions),
        )
        return ScalingView(status, conditions(self.last, self.write_error))


def scaling_report(namespace: str, deployment: str, record: ModelRecord) -> dict[str, Any] | None:
    """The ledger's ScalingReport (JSON, as the capacity report carries it) of one ModelDeployment: its
    desired replicas, the signals of the last reading (None when they could not be read) and the same
    decisions status.scaling shows. None before the first reading."""
    if record.last is None or record.model is None or record.read_at is None:
        return None
    readable = record.signals is not None and record.last.able
    return {
        "namespace": namespace,
        "deployment": deployment,
        "model": record.model,
        "desiredReplicas": record.desired if record.desired is not None else record.last.replicas,
        "observedAt": record.read_at,
        "signals": signals_of(record.signals).model_dump(mode="json", by_alias=True, exclude_none=True)
        if readable and record.signals is not None
        else None,
        "decisions": [
            entry.model_dump(mode="json", by_alias=True, exclude_none=True) for entry in record.decisions
        ],
    }


def signals_of(signals: Signals) -> ScalingSignals:
    kv = round(signals.kv_cache, 3) if signals.kv_cache is not None else None
    return ScalingSignals(
        demand=signals.demand,
        waiting=signals.waiting,
        running=signals.running,
        kv_cache_utilization=kv,
        gateway_queued=signals.gateway_queued,
    )


def conditions(decision: Decision, write_error: str | None) -> dict[str, Value]:
    """AbleToScale, ScalingActive and ScalingLimited, as the HorizontalPodAutoscaler states them."""
    if write_error:
        able: Value = (False, Reason.FAILED_UPDATE_SCALE, write_error)
    else:
        able = (True, Reason.READY_FOR_NEW_SCALE, "the autoscaler can change spec.replicas")
    if decision.able:
        active: Value = (True, Reason.VALID_METRICS, decision.message)
    else:
        active = (False, Reason.METRICS_UNAVAILABLE, decision.message)
    limited_reasons = {
        Why.TOO_FEW: (Reason.TOO_FEW_REPLICAS, "the desired count is below minReplicas"),
        Why.TOO_MANY: (Reason.TOO_MANY_REPLICAS, "the desired count is above maxReplicas"),
        Why.INSUFFICIENT_GPU: (Reason.INSUFFICIENT_GPU, "replicas are pending for lack of GPUs"),
    }
    if decision.limited in limited_reasons:
        reason, message = limited_reasons[decision.limited]
        limited: Value = (True, reason, message)
    else:
        limited = (False, Reason.DESIRED_WITHIN_RANGE, "the desired count is within range")
    return {ABLE_TO_SCALE: able, SCALING_ACTIVE: active, SCALING_LIMITED: limited}


def event_message(before: int, after: int, decision: Decision) -> str:
    """`Scaled up from 1 to 3: queue depth 31 over 3 x 8`."""
    direction = "up" if after > before else "down"
    return f"Scaled {direction} from {before} to {after}: {decision.message}"
