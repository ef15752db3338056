"""A ModelDeployment the operator cannot read: said on the object, not only in the operator's log.

The CRD in the cluster normally refuses such a spec at admission, so the test makes the situation in
which it happens: a CRD older and looser than the operator (here, without the maximum on
`parallelism.tensor`). The CRD is restored afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes.dynamic import DynamicClient

from modelplex.crds.generate import CRD_PATH
from mpxtest.cluster import apply_manifest, install_crd
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster


@pytest.fixture
def looser_crd(dynamic: DynamicClient) -> Iterator[None]:
    crd: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    loose = copy.deepcopy(crd)
    spec = loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec["properties"]["parallelism"]["properties"]["tensor"]["maximum"]
    apply_manifest(dynamic, loose)
    try:
        yield
    finally:
        install_crd(dynamic)


def test_a_spec_the_operator_cannot_read_gets_invalid_spec_and_a_warning_naming_the_field(
    kit: Any, operator: Any, namespace: str, looser_crd: None
) -> None:
    body = {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "too-wide"},
        "spec": {"model": {"source": "hf://org/model"}, "parallelism": {"tensor": 2048}},
    }
    eventually(  # the API server takes a moment to serve the looser schema
        lambda: kit.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body)).returncode == 0,
        timeout=30,
        what="the looser CRD to admit tensor: 2048",
    )
    ready = kit.wait_condition(namespace, "too-wide", "False", "InvalidSpec")
    assert "spec.parallelism.tensor" in ready["message"]
    degraded = kit.condition(namespace, "too-wide", "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert kit.apps.list_namespaced_deployment(namespace).items == []  # nothing was created from it

    def warning() -> Any:
        found = [e for e in kit.events(namespace, "too-wide") if e.reason == "InvalidSpec"]
        return found[0] if found else None

    event = eventually(warning, timeout=15, what="a Warning Event with reason InvalidSpec")
    assert event.type == "Warning"
    assert "spec.parallelism.tensor" in event.message
