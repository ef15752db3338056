"""`modelplex scale NAME --namespace NS` writes spec.replicas through the scale subresource."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

MODELPLEX = str(Path(sys.executable).with_name("modelplex"))
Kit = Any  # the `kit` fixture of this folder's conftest


def _scale(kit: Kit, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MODELPLEX, "scale", *args, "--kubeconfig", str(kit.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_scale_sets_replicas_within_the_declared_bounds(kit: Kit, namespace: str) -> None:
    manifest = kit.apply_example("single-gpu", namespace)
    name = manifest["metadata"]["name"]
    kit.create(
        {**manifest, "spec": {**manifest["spec"], "scaling": {"minReplicas": 1, "maxReplicas": 2}}}, namespace
    )

    scaled = _scale(kit, name, "--replicas", "2", "-n", namespace)
    assert scaled.returncode == 0, scaled.stderr
    assert kit.md(namespace, name)["spec"]["replicas"] == 2

    refused = _scale(kit, name, "--replicas", "5", "-n", namespace)
    assert refused.returncode == 1
    assert "replicas must be within [scaling.minReplicas, scaling.maxReplicas]" in refused.stderr
    assert kit.md(namespace, name)["spec"]["replicas"] == 2


def test_scale_names_an_unknown_model_deployment(kit: Kit, namespace: str) -> None:
    result = _scale(kit, "no-such-model", "--replicas", "1", "-n", namespace)
    assert result.returncode == 1
    assert "no-such-model" in result.stderr
    assert "not found" in result.stderr
