"""deploy/dev-cluster/build.sh and deploy/prometheus/build.sh: pinned versions agree, and a missing
toolchain or module proxy is named."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import modelplex

RECIPE = Path(modelplex.__file__).parent / "deploy" / "dev-cluster"
PROMETHEUS_RECIPE = Path(modelplex.__file__).parent / "deploy" / "prometheus"
RECIPES = pytest.mark.parametrize("recipe", [RECIPE, PROMETHEUS_RECIPE], ids=["dev-cluster", "prometheus"])


def _versions() -> dict[str, str]:
    lines = (RECIPE / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def _required(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", go_mod.read_text(), re.MULTILINE)
    assert match, f"{module} not required in {go_mod}"
    return match.group(1)


def test_versions_agree_with_the_wrapper_modules() -> None:
    versions = _versions()
    assert _required(RECIPE / "go.mod", "k8s.io/kubernetes") == versions["KUBERNETES_VERSION"]
    assert _required(RECIPE / "go.mod", "go.etcd.io/etcd/server/v3") == versions["ETCD_VERSION"]
    assert _required(RECIPE / "lws" / "go.mod", "sigs.k8s.io/lws") == versions["LWS_VERSION"]
    minor = versions["KUBERNETES_VERSION"].removeprefix("v1.")
    staging = re.findall(r"^\s*(k8s\.io/\S+) => \1 (v\S+)$", (RECIPE / "go.mod").read_text(), re.MULTILINE)
    assert len(staging) >= 30
    assert {version for _, version in staging} == {f"v0.{minor}"}


def _build(tmp_path: Path, recipe: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MODELPLEX_CACHE_DIR": str(tmp_path / "cache"), **env}
    return subprocess.run(
        ["bash", str(recipe / "build.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@RECIPES
def test_missing_go_is_named(tmp_path: Path, recipe: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "date", "dirname", "mkdir", "rm", "mv", "ln", "cat", "sed", "basename", "mktemp"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    result = _build(tmp_path, recipe, PATH=str(bin_dir))
    assert result.returncode != 0
    assert "Go is not installed" in result.stderr


@RECIPES
def test_unreachable_module_proxy_is_named(tmp_path: Path, recipe: Path) -> None:
    result = _build(
        tmp_path,
        recipe,
        GOPROXY="http://127.0.0.1:9",
        GOMODCACHE=str(tmp_path / "modcache"),
        GOFLAGS="-modcacherw",
    )
    assert result.returncode != 0
    assert "Go module proxy (http://127.0.0.1:9) did not answer" in result.stderr


@RECIPES
def test_proxy_switched_off_is_named(tmp_path: Path, recipe: Path) -> None:
    result = _build(tmp_path, recipe, GOPROXY="off")
    assert result.returncode != 0
    assert "GOPROXY is off" in result.stderr
