"""The operator's settings: read once from MODELPLEX_OPERATOR_* at start, then passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Every knob of the operator. Environment: `MODELPLEX_OPERATOR_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="MODELPLEX_OPERATOR_", frozen=True, extra="forbid")

    kubeconfig: Path | None = None  # unset: in-cluster service account, else $KUBECONFIG / ~/.kube/config
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    field_manager: str = "modelplex-operator"
    workers: int = Field(default=16, ge=1, le=256)  # reconciles running at once
    resync_seconds: float = Field(default=60.0, gt=0)  # every ModelDeployment is reconciled this often
    retry_seconds: float = Field(default=5.0, gt=0)  # after a failed reconcile
    slow_reconcile_seconds: float = Field(default=2.0, gt=0)  # longer reconciles are logged as warnings
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    event_worker_idle_seconds: float = Field(default=0.5, gt=0)  # kopf's per-object worker lingers so long
    liveness_endpoint: str | None = None  # e.g. http://0.0.0.0:8080/healthz
    metrics_bind: str | None = Field(default=None, pattern=r"^[^:]*:\d+$")  # e.g. 0.0.0.0:9090: /metrics

    # What every engine pod gets.
    cluster_domain: str = "cluster.local"
    startup_budget_seconds: int = Field(default=1800, ge=60)  # model download + load before liveness counts
    termination_grace_seconds: int = Field(default=120, ge=1)
    drain_seconds: int = Field(default=15, ge=0)  # preStop pause so endpoints drop the pod before SIGTERM
    shm_size: str = "16Gi"  # /dev/shm for NCCL and the engine's worker processes
    multi_node_port: int = Field(default=29501, ge=1, le=65535)  # vLLM's master port in a multi-node group

    # The autoscaler (ModelDeployments with spec.scaling only; its policy: AutoscalerSettings).
    autoscaler_field_manager: str = "modelplex-autoscaler"
    engine_metrics_port: int = Field(default=8000, ge=1, le=65535)
    # The gateways whose queues the autoscaler reads: the EndpointSlices of this Service ("ns/name").
    gateway_service: str | None = "modelplex-system/modelplex-gateway"
    gateway_metrics_port_name: str = "http"
    # The gateways' MODELPLEX_GATEWAY_METRICS_TOKEN, when their /metrics requires one.
    gateway_metrics_token: SecretStr | None = None

    # The capacity ledger: Ready engine pods reported to the ledger's admin API (base URL, e.g.
    # http://modelplex-gateway-admin.modelplex-system:8081) with its admin token. Unset: not reported.
    ledger_url: str | None = None
    ledger_admin_token: SecretStr | None = None
    capacity_report_seconds: float = Field(default=30.0, gt=0, le=60)  # the ledger expects <= 60 s
