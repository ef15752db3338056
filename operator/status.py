"""The status of a ModelDeployment, computed from what was observed (pure).

Ready: every desired replica ready on the current spec. Available: at least one replica serves.
Progressing: a rollout or start-up is under way. Degraded: something blocks it (the reason names
what: InsufficientGPUMemory, InsufficientGPU, Unschedulable, CrashLooping, ApplyFailed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplex.crds import labels
from modelplex.crds.resource import ModelDeployment
from modelplex.crds.status import AVAILABLE, DEGRADED, PROGRESSING, READY, Reason
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


def _ready(
    md: ModelDeployment, verdict: FitVerdict, seen: Counts, issue: Problem | None
) -> tuple[bool, str, str]:
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


def _available(md: ModelDeployment, seen: Counts, issue: Problem | None) -> tuple[bool, str, str]:
    if seen.ready > 0:
        return True, Reason.REPLICAS_AVAILABLE, f"{seen.ready}/{md.spec.replicas} replicas ready"
    if md.spec.replicas == 0:
        return False, Reason.SCALED_TO_ZERO, "scaled to zero replicas"
    if issue:
        return False, issue.reason, issue.message
    return False, Reason.NO_REPLICA_READY, "no replica is ready yet"


def _progressing(
    md: ModelDeployment, observed: Observed, seen: Counts, issue: Problem | None
) -> tuple[bool, str, str]:
    want = md.spec.replicas
    if issue:
        return False, issue.reason, issue.message
    if observed.workload is None:
        return True, Reason.CREATING, "creating the workload"
    if seen.current and seen.ready >= want and seen.updated >= want and seen.replicas == want:
        return False, Reason.ROLLOUT_COMPLETE, f"{want} replicas on the current spec"
    return True, Reason.ROLLING_OUT, f"{seen.updated}/{want} replicas updated, {seen.ready} ready"


def _condition(
    kind: str, value: tuple[bool, str, str], generation: int, previous: dict[str, Manifest], now: str
) -> Manifest:
    status = "True" if value[0] else "False"
    before = previous.get(kind)
    changed = before is None or before.get("status") != status
    return {
        "type": kind,
        "status": status,
        "reason": value[1],
        "message": value[2][:4096],
        "observedGeneration": generation,
        "lastTransitionTime": now if changed or before is None else before["lastTransitionTime"],
    }


def compute_status(
    md: ModelDeployment,
    verdict: FitVerdict,
    observed: Observed,
    gpus_per_replica: int,
    nodes: int,
    endpoint: str,
    previous: Manifest,
    now: str,
) -> Manifest:
    """The whole status; `previous` is the current status (its transition times are kept)."""
    seen, issue = counts(observed.workload), problem(md, verdict, observed)
    generation = md.metadata.generation
    before = {c["type"]: c for c in previous.get("conditions", [])}
    values = {
        READY: _ready(md, verdict, seen, issue),
        AVAILABLE: _available(md, seen, issue),
        PROGRESSING: _progressing(md, observed, seen, issue),
        DEGRADED: (
            issue is not None,
            issue.reason if issue else Reason.AS_EXPECTED,
            issue.message if issue else "",
        ),
    }
    return {
        "observedGeneration": generation,
        "conditions": [_condition(kind, value, generation, before, now) for kind, value in values.items()],
        "replicas": seen.replicas,
        "readyReplicas": seen.ready,
        "updatedReplicas": seen.updated,
        "selector": labels.selector_string(labels.serving_selector(md.metadata.name)),
        "servedName": md.served_name,
        "endpoint": endpoint,
        "gpusPerReplica": gpus_per_replica,
        "nodesPerReplica": nodes,
    }


def transitions(previous: Manifest, current: Manifest) -> list[Transition]:
    """Events for changes of the Ready condition's status or reason."""

    def ready(status: Manifest) -> Manifest | None:
        return next((c for c in status.get("conditions", []) if c["type"] == READY), None)

    before, after = ready(previous), ready(current)
    if after is None or (
        before and (before["status"], before["reason"]) == (after["status"], after["reason"])
    ):
        return []
    if before is None and after["reason"] in (Reason.STARTING, Reason.CREATING):
        return []  # the first status of a new ModelDeployment is not news
    good = after["status"] == "True" or after["reason"] in (Reason.STARTING, Reason.SCALED_TO_ZERO)
    return [Transition("Normal" if good else "Warning", after["reason"], after["message"])]
