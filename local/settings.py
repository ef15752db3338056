"""Settings of the local stack (`modelplex up`), read once from MODELPLEX_LOCAL_* variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import modelplex

DEFAULT_DEPLOYMENT = Path(modelplex.__file__).parent / "deploy" / "examples" / "local-smollm2.yaml"


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELPLEX_LOCAL_", frozen=True, extra="forbid")

    state_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "state" / "modelplex")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port
    demo_tenant: str = "demo"
    # vLLM on 2 CPU cores needs ~90 s to load even a tiny model; a cold page cache more.
    worker_start_timeout_seconds: float = Field(default=600, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # The local CPU profile: what one worker costs per hour (product `cpu`), recorded once when the
    # ledger has no cost for `cpu` (set your own with `modelplex costs set --gpu-product cpu`).
    cpu_cost_per_hour: str = "0.05"

    @property
    def local_dir(self) -> Path:
        return self.state_dir / "local"

    @property
    def replicas_file(self) -> Path:
        """Replica counts set with `modelplex scale`, over the files' `spec.replicas`."""
        return self.local_dir / "replicas.json"

    @property
    def pid_file(self) -> Path:
        return self.local_dir / "up.pid"
