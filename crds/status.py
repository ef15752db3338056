"""Status of a ModelDeployment: designed conditions and replica counts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelplex.crds.base import ApiModel

READY = "Ready"
AVAILABLE = "Available"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
CONDITION_TYPES = (READY, AVAILABLE, PROGRESSING, DEGRADED)


class Reason:
    """CamelCase reasons the operator sets on conditions (and on Events)."""

    ALL_REPLICAS_READY = "AllReplicasReady"
    REPLICAS_AVAILABLE = "ReplicasAvailable"
    NO_REPLICA_READY = "NoReplicaReady"
    STARTING = "Starting"
    ROLLING_OUT = "RollingOut"
    ROLLOUT_COMPLETE = "RolloutComplete"
    CREATING = "Creating"
    SCALED_TO_ZERO = "ScaledToZero"
    INSUFFICIENT_GPU_MEMORY = "InsufficientGPUMemory"
    INSUFFICIENT_GPU = "InsufficientGPU"
    UNSCHEDULABLE = "Unschedulable"
    CRASH_LOOPING = "CrashLooping"
    APPLY_FAILED = "ApplyFailed"
    INVALID_SPEC = "InvalidSpec"
    AS_EXPECTED = "AsExpected"


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """One aspect of the ModelDeployment's state, in the Kubernetes condition convention."""

    type: str = Field(max_length=64)
    """Ready, Available, Progressing or Degraded."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str = Field(max_length=64)
    """Machine-readable CamelCase cause of the current status."""
    message: str = Field(default="", max_length=4096)
    """Human-readable explanation, with the numbers that matter."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""
    last_transition_time: str
    """When status last changed (RFC 3339); unchanged while only reason or message change."""


class ModelDeploymentStatus(ApiModel):
    """What the operator observed, written only by the operator."""

    observed_generation: int | None = None
    """The metadata.generation the operator last reconciled."""
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, Available, Progressing and Degraded."""
    replicas: int | None = None
    """Replicas (pods, or pod groups for multi-node replicas) that currently exist."""
    ready_replicas: int | None = None
    """Replicas whose engine answers /health."""
    updated_replicas: int | None = None
    """Replicas running the current spec."""
    selector: str | None = None
    """Label selector of the serving pods (one per replica), for the scale subresource."""
    served_name: str | None = None
    """The model id tenants send in requests."""
    endpoint: str | None = None
    """In-cluster URL of the OpenAI-compatible API (the Service's DNS name)."""
    gpus_per_replica: int | None = None
    """GPUs each replica uses (tensor x pipeline)."""
    nodes_per_replica: int | None = None
    """Nodes each replica spans; above 1 the replica is a LeaderWorkerSet group."""
