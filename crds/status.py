"""Status of a ModelDeployment: designed conditions and replica counts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelplex.crds.base import ApiModel

READY = "Ready"
AVAILABLE = "Available"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
# The autoscaler's, named as the HorizontalPodAutoscaler names them; only with spec.scaling.
ABLE_TO_SCALE = "AbleToScale"
SCALING_ACTIVE = "ScalingActive"
SCALING_LIMITED = "ScalingLimited"
CONDITION_TYPES = (READY, AVAILABLE, PROGRESSING, DEGRADED, ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED)
MAX_DECISIONS = 20


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
    # The autoscaler's conditions
    SUCCEEDED_RESCALE = "SucceededRescale"
    READY_FOR_NEW_SCALE = "ReadyForNewScale"
    FAILED_UPDATE_SCALE = "FailedUpdateScale"
    VALID_METRICS = "ValidMetricFound"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    TOO_FEW_REPLICAS = "TooFewReplicas"
    TOO_MANY_REPLICAS = "TooManyReplicas"


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


class ScalingSignals(ApiModel):
    """The load a decision was made from, summed over the model's replicas and gateways."""

    demand: int
    """Requests wanting a replica: held by gateways plus running or waiting in engines."""
    waiting: int
    """Engines: requests waiting (vllm:num_requests_waiting)."""
    running: int
    """Engines: requests running (vllm:num_requests_running)."""
    kv_cache_utilization: float | None = None
    """Engines: mean KV-cache use of the ready replicas, 0..1."""
    gateway_queued: int = 0
    """Gateways: requests held for a free replica."""


class ScalingDecision(ApiModel):
    """One change of spec.replicas by the autoscaler."""

    time: str
    """When it was made (RFC 3339)."""
    from_replicas: int = Field(alias="from")
    """spec.replicas before."""
    to: int
    """spec.replicas after."""
    reason: str = Field(max_length=64)
    """QueueDepth, KVCacheUtilization, Panic, ScaleDownStabilizing, Idle, ScaleFromZero, ..."""
    message: str = Field(default="", max_length=1024)
    """The numbers behind it."""
    signals: ScalingSignals | None = None
    """The load it was made from."""


class ScalingStatus(ApiModel):
    """What the autoscaler decided, and why."""

    desired_replicas: int
    """The replicas the autoscaler last asked for."""
    last_scale_time: str | None = None
    """When it last changed spec.replicas (RFC 3339)."""
    decisions: list[ScalingDecision] = Field(default_factory=list, max_length=MAX_DECISIONS)
    """The last changes, oldest first."""


class ModelDeploymentStatus(ApiModel):
    """What the operator observed, written only by the operator."""

    observed_generation: int | None = None
    """The metadata.generation the operator last reconciled."""
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, Available, Progressing and Degraded; AbleToScale, ScalingActive and ScalingLimited with
    spec.scaling."""
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
    scaling: ScalingStatus | None = None
    """The autoscaler's decisions; only with spec.scaling."""
