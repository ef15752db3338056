"""`modelplex up` refuses what cannot work before starting anything, and says why."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

MODELPLEX = str(Path(sys.executable).parent / "modelplex")

VALID = """
apiVersion: modelplex.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: tiny}}
spec:
  model: {{source: "file://{model}"}}
"""


def _up(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODELPLEX_LOCAL_STATE_DIR": str(tmp_path / "state"),
        "MODELPLEX_BILLING_STATE_DIR": str(tmp_path / "state"),
    }
    return subprocess.run(
        [MODELPLEX, "up", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _started_nothing(tmp_path: Path) -> bool:
    return (
        not (tmp_path / "state" / "local" / "logs").exists()
        and not (tmp_path / "state" / "ledger.db").exists()
    )


def test_invalid_spec_names_every_bad_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: modelplex.dev/v1alpha1\nkind: ModelDeployment\nmetadata: {name: broken}\n"
        "spec:\n  model: {source: 'ftp://nowhere'}\n  parallelism: {tensor: 0}\n"
        "  engine: {gpuMemoryUtilization: 1.5}\n"
    )
    result = _up(tmp_path, "-f", str(bad))
    assert result.returncode == 1
    assert "spec.model.source" in result.stderr
    assert "spec.parallelism.tensor" in result.stderr
    assert (
        "spec.engine.gpuMemoryUtilization" in result.stderr
        or "spec.engine.gpu_memory_utilization" in result.stderr
    )
    assert _started_nothing(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [unclosed", "not valid YAML"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "expected apiVersion modelplex.dev/v1alpha1",
        ),
        (
            "apiVersion: modelplex.dev/v1alpha1\nkind: ModelDeployment\nspec: {}\n",
            "metadata.name is required",
        ),
    ],
)
def test_files_that_are_not_model_deployments(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = _up(tmp_path, "-f", str(bad))
    assert result.returncode == 1
    assert message in result.stderr
    assert str(bad) in result.stderr
    assert _started_nothing(tmp_path)


def test_a_model_this_machine_cannot_fetch(tmp_path: Path) -> None:
    remote = tmp_path / "remote.yaml"
    remote.write_text(VALID.format(model="/x").replace("file:///x", "hf://meta-llama/Llama-3.1-8B"))
    result = _up(tmp_path, "-f", str(remote))
    assert result.returncode == 1
    assert "no model hub is reachable" in result.stderr
    assert "modelplex models prepare" in result.stderr


def test_multi_gpu_parallelism_is_refused_locally(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    spec = tmp_path / "tp2.yaml"
    spec.write_text(VALID.format(model=model) + "  parallelism: {tensor: 2}\n  resources: {gpusPerNode: 8}\n")
    result = _up(tmp_path, "-f", str(spec))
    assert result.returncode == 1
    assert "parallelism.tensor and parallelism.pipeline to 1" in result.stderr


def test_a_busy_port_is_named(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    spec = tmp_path / "tiny.yaml"
    spec.write_text(VALID.format(model=model))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _up(tmp_path, "-f", str(spec), "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert _started_nothing(tmp_path)


def test_scale_without_a_running_stack(tmp_path: Path) -> None:
    env = {**os.environ, "MODELPLEX_LOCAL_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [MODELPLEX, "scale", "smollm2", "--replicas", "2"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "no local stack is running" in result.stderr
