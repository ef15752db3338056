"""The status of a ModelDeployment, computed from what was observed (pure).

Ready: every desired replica ready on the current spec. Available: at least one replica serves.
Progressing: a rollout or start-up is under way. Degraded: something blocks it (the reason names
what: InsufficientGPUMemory, InsufficientGPU, Unschedulable, CrashLooping, ApplyFailed, InvalidSpec).
The status is built as the API's own models (`crds.status`), never as loose dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from modelplex.crds import labels
from modelplex.crds.resource import ModelDeployment
from modelplex.crds.status import (
    AVAILABLE,
    DEGRADED,
    PROGRESSING,
    READY,
    Condition,
    ConditionStatus,
    ModelDeploymentStatus,
    Reason,
)
from modelplex.operator.autoscaler.record import ScalingView
from modelplex.operator.fit import FitVerdict

Manifest = dict[str, Any]
_BAD_WAITING = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError")


@dataclass(frozen=True)
class PodState:
    """What the status needs of one engine pod."""

    name: str
    phase: str
    ready: bool
    unschedulable: str | None  # the scheduler's message while the pod cannot be placed
    waiting: str | None  # a container's waiting reason, e.g. CrashLoopBackOff
    ip: str | None = None
    serving: bool = False  # answers HTTP: a single-node replica, or a multi-node replica's leader


@dataclass(frozen=True)
class Observed:
    workload: Manifest | None
    pods: tuple[PodState, ...]
    apply_error: str | None = None


@dataclass(frozen=True)
class Counts:
    replicas: int
    ready: int
    updated: int
    current: bool  # the workload controller has seen the workload's latest generation


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


@dataclass(frozen=True)
class Transition:
    """A change worth a Kubernetes Event."""

    type: str  # Normal or Warning
    reason: str
    message: str


Value = tuple[bool, str, str]  # a condition's status, reason and message


def counts(workload: Manifest | None) -> Counts:
    if workload is None:
        return Counts(0, 0, 0, False)
    status = workload.get("status") or {}
    generation = workload.get("metadata", {}).get("generation", 0)
    current = status.get("observedGeneration", 0) >= generation
    return Counts(
        status.get("replicas", 0), status.get("readyReplicas", 0), status.get("updatedReplicas", 0), current
    )


def problem(md: ModelDeployment, verdict: FitVerdict, observed: Observed) -> Problem | None:
    if verdict.fits is False:
        return Problem(Reason.INSUFFICIENT_GPU_MEMORY, verdict.message)
    if observed.apply_error:
        return Problem(Reason.APPLY_FAILED, observed.apply_error)
    pending = [p for p in observed.pods if p.unschedulable]
    if pending:
        message = pending[0].unschedulable or ""
        gpu = f"Insufficient {md.spec.resources.gpu_resource_name}"
        reason = Reason.INSUFFICIENT_GPU if gpu in message else Reason.UNSCHEDULABLE
        return Problem(reason, f"{len(pending)} pod(s) cannot be scheduled: {message}")
    failing = [p for p in observed.pods if p.waiting in _BAD_WAITING]
    if failing:
        return Problem(
            Reason.CRASH_LOOPING,
            f"{len(failing)} pod(s) failing, e.g. {failing[0].name}: {failing[0].waiting}",
        )
    return None


def _ready(md: ModelDeployment, verdict: FitVerdict, seen: Counts, issue: Problem | None) -> Value:
    want = md.spec.replicas
    progress = f"{seen.ready}/{want} replicas ready"
    note = "" if verdict.fits is False else f"; {verdict.message}"
    if verdict.fits is False and issue:
        return False, issue.reason, issue.message
    if want == 0:
        return False, Reason.SCALED_TO_ZERO, "scaled to zero replicas"
    if seen.current and seen.ready >= want and seen.updated >= want:
        return True, Reason.ALL_REPLICAS_READY, progress + note
    if issue:
        return False, issue.reason, f"{progress}; {issue.message}"
    return False, Reason.STARTING, progress + note


def _available(md: ModelDeployment, seen: Counts, issue: Problem | None) -> Value:
    if seen.ready > 0:
        return True, Reason.REPLICAS_AVAILABLE, f"{seen.ready}/{md.spec.replicas} replicas ready"
    if md.spec.replicas == 0:
        return False, Reason.SCALED_TO_ZERO, "scaled to zero replicas"
    if issue:
        return False, issue.reason, issue.message
    return False, Reason.NO_REPLICA_READY, "no replica is ready yet"


def _progressing(md: ModelDeployment, observed: Observed, seen: Counts, issue: Problem | None) -> Value:
    want = md.spec.replicas
    if issue:
        return False, issue.reason, issue.message
    if observed.workload is None:
        return True, Reason.CREATING, "creating the workload"
    if seen.current and seen.ready >= want and seen.updated >= want and seen.replicas == want:
        return False, Reason.ROLLOUT_COMPLETE, f"{want} replicas on the current spec"
    return True, Reason.ROLLING_OUT, f"{seen.updated}/{want} replicas updated, {seen.ready} ready"


@dataclass(frozen=True)
class StatusInput:
    """Everything the status is computed from."""

    md: ModelDeployment
    verdict: FitVerdict
    observed: Observed
    endpoint: str
    nodes_per_replica: int
    previous: ModelDeploymentStatus  # the status as it stands: its transition times are kept
    now: str  # RFC 3339
    scaling: ScalingView | None = None  # the autoscaler's, for a ModelDeployment with spec.scaling


def _condition(
    kind: str, value: Value, generation: int, previous: ModelDeploymentStatus, now: str
) -> Condition:
    status: ConditionStatus = "True" if value[0] else "False"
    before = condition(previous, kind)
    changed = before is None or before.status != status
    return Condition(
        type=kind,
        status=status,
        reason=value[1],
        message=value[2][:4096],
        observed_generation=generation,
        last_transition_time=now if changed or before is None else before.last_transition_time,
    )


def condition(status: ModelDeploymentStatus, kind: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == kind), None)


def compute_status(given: StatusInput) -> ModelDeploymentStatus:
    """The whole status of a ModelDeployment whose spec is valid."""
    md, observed = given.md, given.observed
    seen, issue = counts(observed.workload), problem(md, given.verdict, observed)
    generation = md.metadata.generation
    values = {
        READY: _ready(md, given.verdict, seen, issue),
        AVAILABLE: _available(md, seen, issue),
        PROGRESSING: _progressing(md, observed, seen, issue),
        DEGRADED: (
            issue is not None,
            issue.reason if issue else Reason.AS_EXPECTED,
            issue.message if issue else "",
        ),
    }
    if given.scaling is not None:
        values.update(given.scaling.conditions)
    return ModelDeploymentStatus(
        observed_generation=generation,
        conditions=[_condition(k, v, generation, given.previous, given.now) for k, v in values.items()],
        replicas=seen.replicas,
        ready_replicas=seen.ready,
        updated_replicas=seen.updated,
        selector=labels.selector_string(labels.serving_selector(md.metadata.name)),
        served_name=md.served_name,
        endpoint=given.endpoint,
        gpus_per_replica=md.spec.parallelism.gpus,
        nodes_per_replica=given.nodes_per_replica,
        scaling=given.scaling.status if given.scaling is not None else None,
    )


def invalid_status(
    problems: list[str], generation: int, workload: Manifest | None, previous: ModelDeploymentStatus, now: str
) -> ModelDeploymentStatus:
    """The status of a ModelDeployment the operator cannot read: what is wrong, and nothing changed.

    Its children are left as they are (the last valid spec keeps serving), so Available still says
    whether replicas serve; the rest of the previous status stands.
    """
    message = "invalid spec, nothing was changed: " + "; ".join(problems)
    seen = counts(workload)
    invalid: Value = (False, Reason.INVALID_SPEC, message)
    values = {
        READY: invalid,
        AVAILABLE: (True, Reason.REPLICAS_AVAILABLE, f"{seen.ready} replicas ready")
        if seen.ready
        else invalid,
        PROGRESSING: invalid,
        DEGRADED: (True, Reason.INVALID_SPEC, message),
    }
    conditions = [_condition(k, v, generation, previous, now) for k, v in values.items()]
    return previous.model_copy(update={"observed_generation": generation, "conditions": conditions})


def transitions(previous: ModelDeploymentStatus, current: ModelDeploymentStatus) -> list[Transition]:
    """Events for changes of the Ready condition's status or reason."""
    before, after = condition(previous, READY), condition(current, READY)
    if after is None or (before and (before.status, before.reason) == (after.status, after.reason)):
        return []
    if before is None and after.reason in (Reason.STARTING, Reason.CREATING):
        return []  # the first status of a new ModelDeployment is not news
    good = after.status == "True" or after.reason in (Reason.STARTING, Reason.SCALED_TO_ZERO)
    return [Transition("Normal" if good else "Warning", after.reason, after.message)]


def read_status(body: Manifest | None) -> ModelDeploymentStatus:
    """The status in an object as the API server returned it; one this operator cannot read counts as none."""
    try:
        return ModelDeploymentStatus.model_validate((body or {}).get("status") or {})
    except ValidationError:
        return ModelDeploymentStatus()
