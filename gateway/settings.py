"""The gateway's settings: read once from the environment at start, then passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Every knob of the gateway. Environment: `MODELPLEX_GATEWAY_<FIELD>`, plus `MODELPLEX_REDIS_URL`."""

    model_config = SettingsConfigDict(
        env_prefix="MODELPLEX_GATEWAY_", frozen=True, extra="forbid", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    config: Path | None = None  # static discovery file (models -> endpoints, access, routing)

    # The admin plane. With admin_port set, /admin/ is served only on that second listener (on
    # admin_host, default `host`) and the tenant-facing port answers 404 there.
    admin_port: int | None = Field(default=None, ge=0, le=65535)
    admin_host: str | None = None
    # /metrics: on the tenant-facing port ("tenant") or only on the admin listener ("admin"), and
    # with a token set, only for `Authorization: Bearer <metrics_token>`.
    metrics_listener: Literal["tenant", "admin"] = "tenant"
    metrics_token: SecretStr | None = None
    # Tenant ids in the tenant label of requests_total and tokens_total; off: every tenant is "*".
    metrics_tenant_labels: bool = False

    # Discovery: "static" reads `config`; "kubernetes" watches ModelDeployments and their EndpointSlices.
    discovery: Literal["static", "kubernetes"] = "static"
    namespace: str | None = None  # kubernetes: the one namespace watched; None: every namespace
    kubeconfig: Path | None = None  # kubernetes: None = the pod's service account, else ~/.kube/config
    discovery_debounce_seconds: float = Field(default=0.1, ge=0)  # gathers a burst of changes

    # Shared limits: unset means in-process limits (one gateway replica).
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MODELPLEX_REDIS_URL", "redis_url")
    )

    # A gateway holds a Redis concurrency lease per request and renews it every third of this; a
    # gateway that dies stops renewing, and its tenants get their slots back after this long.
    concurrency_lease_seconds: float = Field(default=60.0, gt=0)
    # A Redis call slower than this counts as an outage; during one, each replica enforces the limits
    # on its own and tries Redis again after redis_retry_seconds.
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    redis_retry_seconds: float = Field(default=5.0, gt=0)

    # Requests.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    prefix_chars: int = Field(default=256, gt=0)  # leading prompt characters hashed for prefix affinity
    # A non-streaming request that may generate more tokens than this (max_tokens x n x prompts, or no
    # max_tokens) is streamed from the engine and assembled, so that a client who leaves stops the
    # engine and is billed what it generated. A shorter one goes upstream as sent (one answer to relay,
    # not one chunk per token); a client who leaves it is billed the whole answer, read to its end.
    assemble_above_tokens: int = Field(default=64, ge=0)
    budget_cache_seconds: float = Field(default=1.0, ge=0)
    # Budget reservations: a model's context length when discovery does not know it (spec.engine.
    # maxModelLen), and the tokens a chat template may add around the request's own text.
    default_context_tokens: int = Field(default=32768, gt=0)
    prompt_overhead_tokens: int = Field(default=64, ge=0)

    # Upstream.
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    first_byte_timeout_seconds: float = Field(default=120.0, gt=0)
    idle_stream_timeout_seconds: float = Field(default=60.0, gt=0)
    replica_max_in_flight: int = Field(default=64, gt=0)  # per replica, unless the model overrides it

    # Queueing when every replica is saturated or none is ready.
    queue_max_size: int = Field(default=512, ge=0)
    queue_timeout_seconds: float = Field(default=30.0, gt=0)
    # A model at zero replicas (scaled to zero) holds requests until one is up: a cold start.
    cold_start_timeout_seconds: float = Field(default=600.0, gt=0)
    cold_start_estimate_seconds: float = Field(default=120.0, gt=0)  # until one was measured
    retry_after_seconds: int = Field(default=1, ge=1)

    # Routing.
    bounded_load_factor: float = Field(default=1.25, gt=1.0)

    # Passive health and load scraping.
    eject_after_failures: int = Field(default=3, gt=0)
    probe_interval_seconds: float = Field(default=2.0, gt=0)
    scrape_interval_seconds: float = Field(default=2.0, ge=0)  # 0 disables scraping /metrics

    # Journal and shipping.
    journal_dir: Path = Path(".modelplex/gateway-journal")
    journal_fsync_interval_seconds: float = Field(default=0.02, gt=0)
    journal_segment_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    ship_batch_size: int = Field(default=500, gt=0)
    ship_interval_seconds: float = Field(default=0.2, gt=0)
    ship_backoff_max_seconds: float = Field(default=30.0, gt=0)

    # Client connections (gateway/http/limits.py): what a client without a key can hold.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)  # request line + headers; 431 beyond
    max_header_count: int = Field(default=100, gt=0)
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # to the end of the headers; 408 beyond
    body_timeout_seconds: float = Field(default=30.0, gt=0)  # from the headers to the end of the body
    keep_alive_seconds: float = Field(default=75.0, gt=0)  # idle between requests, then closed
    max_connections: int | None = Field(default=None, gt=0)  # 503 beyond; None: what the fd limit leaves

    # Shutdown.
    drain_timeout_seconds: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _listeners_are_coherent(self) -> GatewaySettings:
        if self.metrics_listener == "admin" and self.admin_port is None:
            raise ValueError("metrics_listener 'admin' needs admin_port (the admin listener)")
        if self.admin_host is not None and self.admin_port is None:
            raise ValueError("admin_host is set but admin_port is not: set both, or neither")
        same_host = (self.admin_host or self.host) == self.host
        if same_host and self.admin_port not in (None, 0) and self.admin_port == self.port:
            raise ValueError(f"admin_port {self.admin_port} is the tenant-facing port: pick another")
        return self

    @property
    def admin_bind_host(self) -> str:
        return self.admin_host or self.host
