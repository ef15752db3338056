"""The session's real Kubernetes control plane (see modelplex.devcluster).

Set MODELPLEX_SKIP_CLUSTER_TESTS=1 to skip the tests that need it; CI never sets it, and
without it a missing toolchain fails those tests with a message naming what is missing.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

import modelplex
from modelplex.crds.generate import CRD_PATH
from modelplex.devcluster.binaries import ensure_binaries
from modelplex.devcluster.cluster import DevCluster, start_cluster
from modelplex.devcluster.config import DevClusterSettings
from mpxtest.wait import eventually

OPT_OUT = "MODELPLEX_SKIP_CLUSTER_TESTS"
DEPLOY = Path(modelplex.__file__).parent / "deploy"
OPERATOR_USER = "system:serviceaccount:modelplex-system:modelplex-operator"
GATEWAY_USER = "system:serviceaccount:modelplex-system:modelplex-gateway"
_timings: dict[str, str] = {}


@pytest.fixture(scope="session")
def dev_cluster() -> Iterator[DevCluster]:
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(f"{OPT_OUT}=1 was set by the person running the tests")
    settings = DevClusterSettings()
    binaries = ensure_binaries(settings.cache_dir)
    if binaries.built_now:
        _timings["cold build"] = f"{binaries.cold_build_seconds} s (built in this run)"
    elif binaries.cold_build_seconds is not None:
        _timings["cold build"] = f"{binaries.cold_build_seconds} s (when the cache was filled; reused now)"
    cluster = start_cluster(binaries, settings)
    _timings["warm start to Ready GPU nodes"] = f"{cluster.started_in_seconds:.1f} s"
    try:
        yield cluster
    finally:
        cluster.stop()


@contextmanager
def fresh_namespace(kube: client.ApiClient, prefix: str) -> Iterator[str]:
    """A new namespace for one test; deleted afterwards, waiting until its pods are gone so that the
    GPUs they held are free for the next test on the shared cluster."""
    core = client.CoreV1Api(kube)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and core.list_namespaced_pod(name).items:
            time.sleep(0.2)


def apply_manifest(dynamic: DynamicClient, manifest: dict[str, Any]) -> Any:
    """Server-side apply of one manifest, in the namespace it names (if any), as the tests' manager."""
    resource = dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    return resource.server_side_apply(
        body=manifest,
        name=manifest["metadata"]["name"],
        namespace=manifest["metadata"].get("namespace"),
        field_manager="modelplex-tests",
        force_conflicts=True,
    )


def apply_file(dynamic: DynamicClient, path: Path) -> None:
    for manifest in yaml.safe_load_all(path.read_text()):
        apply_manifest(dynamic, manifest)


def install_crd(dynamic: DynamicClient) -> None:
    """Applies the ModelDeployment CRD and waits until it is established, discoverable and served."""
    apply_manifest(dynamic, yaml.safe_load(CRD_PATH.read_text()))
    crds = dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")

    def established() -> bool:
        conditions = crds.get(name="modeldeployments.modelplex.dev").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    eventually(established, what="the ModelDeployment CRD to be established")
    eventually(
        lambda: dynamic.resources.get(api_version="modelplex.dev/v1alpha1", kind="ModelDeployment"),
        what="the ModelDeployment kind to be discoverable",
    )
    custom = client.CustomObjectsApi(dynamic.client)
    eventually(  # served: its storage answers 429 while it initializes
        lambda: custom.list_cluster_custom_object("modelplex.dev", "v1alpha1", "modeldeployments"),
        what="ModelDeployments to be served",
    )


def phase(pod: client.V1Pod) -> str | None:
    return pod.status.phase if pod.status is not None else None


def labels(obj: client.V1Pod | client.V1Node) -> dict[str, str]:
    return (obj.metadata.labels if obj.metadata is not None else None) or {}


def deleting(pod: client.V1Pod) -> bool:
    return pod.metadata is not None and pod.metadata.deletion_timestamp is not None


def gpus_held(pod: client.V1Pod) -> int:
    """The GPUs a pod holds: its containers' limits, until it has finished."""
    if phase(pod) in ("Succeeded", "Failed"):
        return 0
    containers = pod.spec.containers if pod.spec is not None else []
    limits = [(c.resources.limits if c.resources else None) or {} for c in containers]
    return sum(int(limit.get("nvidia.com/gpu", 0)) for limit in limits)


def free_gpus(core: client.CoreV1Api, wanted: int, total: int = 16) -> None:
    """Waits until `wanted` GPUs are free: other tests share the fleet and their pods may linger."""

    def free() -> bool:
        held = sum(gpus_held(pod) for pod in core.list_pod_for_all_namespaces().items)
        return total - held >= wanted

    eventually(free, timeout=90, what=f"{wanted} free GPUs in the shared dev cluster")


@pytest.fixture(scope="session")
def kube(dev_cluster: DevCluster) -> Iterator[client.ApiClient]:
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(dev_cluster.kubeconfig)
    )
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def dynamic(kube: client.ApiClient) -> DynamicClient:
    return DynamicClient(kube)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def crd(dynamic: DynamicClient) -> None:
    install_crd(dynamic)


@pytest.fixture
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for the test, named after the test's folder (gateway-…, operator-…)."""
    with fresh_namespace(kube, request.path.parent.name) as name:
        yield name


@pytest.fixture(scope="session")
def operator_kubeconfig(dynamic: DynamicClient, dev_cluster: DevCluster, crd: None) -> Path:
    """The operator's identity, bound only by deploy/operator/rbac.yaml."""
    apply_file(dynamic, DEPLOY / "operator" / "rbac.yaml")
    return dev_cluster.user_kubeconfig(OPERATOR_USER)


@pytest.fixture(scope="session")
def gateway_kubeconfig(dynamic: DynamicClient, dev_cluster: DevCluster, crd: None) -> Path:
    """The gateway's identity, bound only by deploy/gateway/rbac.yaml."""
    apply_file(dynamic, DEPLOY / "gateway" / "rbac.yaml")
    return dev_cluster.user_kubeconfig(GATEWAY_USER)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _timings:
        terminalreporter.section("dev cluster")
        for name, value in _timings.items():
            terminalreporter.write_line(f"{name}: {value}")
