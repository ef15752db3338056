"""Settings of the dev cluster: where binaries and state live, and the fake GPU fleet."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GpuNodePool(BaseModel):
    """Identical fake GPU nodes that kwok keeps Ready."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(default=2, ge=1, le=1000)
    gpus_per_node: int = Field(default=8, ge=1, le=64)
    gpu_resource: str = "nvidia.com/gpu"
    gpu_product: str = "NVIDIA-H100-80GB-HBM3"
    gpu_memory_mib: int = Field(default=81559, ge=1)
    cpu: str = "128"
    memory: str = "1Ti"
    name_prefix: str = "gpu-node"


class DevClusterSettings(BaseSettings):
    """Read once from MODELPLEX_DEV_CLUSTER_* variables (e.g. MODELPLEX_DEV_CLUSTER_NODES__COUNT=4)."""

    model_config = SettingsConfigDict(
        env_prefix="MODELPLEX_DEV_CLUSTER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "modelplex")
    state_dir: Path = Field(
        default_factory=lambda: Path.home() / ".local" / "state" / "modelplex" / "dev-cluster"
    )
    nodes: GpuNodePool = GpuNodePool()
    with_lws: bool = True
    start_timeout_seconds: float = Field(default=120, gt=0)
