"""Locate the control-plane binaries, building them through deploy/dev-cluster/build.sh if needed."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import modelplex

BUILD_SCRIPT = Path(modelplex.__file__).parent / "deploy" / "dev-cluster" / "build.sh"


class BinariesUnavailable(RuntimeError):
    """The binaries are not cached and could not be built (the message names what is missing)."""


@dataclass(frozen=True)
class Binaries:
    directory: Path
    built_now: bool = False  # this call built something rather than reusing the cache

    @property
    def cold_build_seconds(self) -> int | None:
        """How long the last build that filled this cache took."""
        recorded = self.directory / ".build-seconds"
        return int(recorded.read_text()) if recorded.exists() else None

    def __getitem__(self, name: str) -> Path:
        return self.directory / name

    @property
    def lws_crds(self) -> list[Path]:
        return sorted((self.directory / "lws-crds").glob("*.yaml"))

    @property
    def kwok_stages(self) -> list[Path]:
        return sorted((self.directory / "kwok-stages").glob("*.yaml"))


def ensure_binaries(cache_dir: Path) -> Binaries:
    """Reuse the cached build for the pinned versions, or build it (cold: tens of minutes)."""
    began = time.time()
    env = {**os.environ, "MODELPLEX_CACHE_DIR": str(cache_dir)}
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=None, text=True, check=False
    )
    if result.returncode != 0:
        raise BinariesUnavailable(
            f"building the dev-cluster binaries failed (exit {result.returncode}); see the messages above"
        )
    directory = Path(result.stdout.strip().splitlines()[-1])
    recorded = directory / ".build-seconds"
    return Binaries(directory, built_now=recorded.exists() and recorded.stat().st_mtime >= began)
