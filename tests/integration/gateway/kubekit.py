"""Kubernetes discovery on the real control plane: the operator, the gateway's identity, a running source."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

import modelplex
from modelplex.devcluster.cluster import DevCluster
from modelplex.gateway.discovery.base import Catalog, ModelSpec
from modelplex.gateway.discovery.kube import KubernetesSource
from modelplex.kube.credentials import load_credentials
from mpxtest.cluster import apply_manifest, fresh_namespace, install_crd
from mpxtest.wait import eventually

ROOT = Path(modelplex.__file__).parent
OPERATOR_RBAC = ROOT / "deploy" / "operator" / "rbac.yaml"
GATEWAY_RBAC = ROOT / "deploy" / "gateway" / "rbac.yaml"
OPERATOR_USER = "system:serviceaccount:modelplex-system:modelplex-operator"
GATEWAY_USER = "system:serviceaccount:modelplex-system:modelplex-gateway"
MODELPLEX = str(Path(sys.executable).with_name("modelplex"))


def apply_file(dynamic: DynamicClient, path: Path) -> None:
    for manifest in yaml.safe_load_all(path.read_text()):
        apply_manifest(dynamic, manifest)


@pytest.fixture(scope="module")
def dynamic(kube: client.ApiClient) -> DynamicClient:
    return DynamicClient(kube)


@pytest.fixture(scope="module")
def crd(dynamic: DynamicClient) -> None:
    install_crd(dynamic)


@pytest.fixture(scope="module")
def gateway_kubeconfig(dynamic: DynamicClient, dev_cluster: DevCluster, crd: None) -> Path:
    """The gateway's identity, bound only by deploy/gateway/rbac.yaml."""
    apply_file(dynamic, GATEWAY_RBAC)
    return dev_cluster.user_kubeconfig(GATEWAY_USER)


@pytest.fixture(scope="module")
def operator(
    dynamic: DynamicClient, dev_cluster: DevCluster, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """`modelplex operator run` under its own ClusterRole, for the module."""
    apply_file(dynamic, OPERATOR_RBAC)
    kubeconfig = dev_cluster.user_kubeconfig(OPERATOR_USER)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [MODELPLEX, "operator", "run", "--kubeconfig", str(kubeconfig)], stdout=sink, stderr=sink
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    with fresh_namespace(kube, "gw") as name:
        yield name


class RunningSource:
    """A KubernetesSource running on its own event loop in a thread; keeps the catalogs it published."""

    def __init__(self, source: KubernetesSource) -> None:
        self.catalogs: list[Catalog] = []
        self.error: BaseException | None = None
        self._source = source
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self._task = asyncio.current_task()  # type: ignore[assignment]
        try:
            await self._source.run(self._publish)
        except asyncio.CancelledError:
            pass
        except BaseException as error:
            self.error = error

    async def _publish(self, catalog: Catalog) -> None:
        self.catalogs.append(catalog)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        eventually(lambda: self._task, timeout=5, what="the source task to start")
        assert self._task is not None
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the discovery source did not stop"
        self._loop.close()

    def model(self, name: str) -> ModelSpec | None:
        """The model in the latest catalog (None when absent or nothing was published yet)."""
        assert self.error is None, f"the discovery source failed: {self.error!r}"
        if not self.catalogs:
            return None
        return next((m for m in self.catalogs[-1].models if m.name == name), None)


@pytest.fixture
def discovered(gateway_kubeconfig: Path, namespace: str) -> Iterator[RunningSource]:
    """Kubernetes discovery of the test's namespace, as the gateway's service account."""
    running = RunningSource(KubernetesSource(load_credentials(gateway_kubeconfig), namespace))
    running.start()
    try:
        yield running
    finally:
        running.stop()


def model_deployment(
    name: str, served_name: str, replicas: int, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    model = {"source": "hf://org/model", "servedName": served_name}
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"model": model, "replicas": replicas, **spec},
    }


def free_gpus(core: client.CoreV1Api, wanted: int, total: int = 16) -> None:
    """Waits until `wanted` GPUs are free: other tests share the fleet and their pods may linger."""

    def free() -> bool:
        held = 0
        for pod in core.list_pod_for_all_namespaces().items:
            if pod.status.phase not in ("Succeeded", "Failed"):
                limits = [c.resources.limits or {} for c in pod.spec.containers]
                held += sum(int(limit.get("nvidia.com/gpu", 0)) for limit in limits)
        return total - held >= wanted

    eventually(free, timeout=90, what=f"{wanted} free GPUs in the shared dev cluster")


def serving_pods(core: client.CoreV1Api, namespace: str, deployment: str) -> dict[str, str]:
    """Running, Ready, not deleting serving pods of `deployment`: pod name -> the URL to route to."""
    selector = f"modelplex.dev/deployment={deployment},modelplex.dev/serving=true"
    found: dict[str, str] = {}
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        live = pod.status.phase == "Running" and not pod.metadata.deletion_timestamp
        if live and ready and pod.status.pod_ip:
            found[pod.metadata.name] = f"http://{pod.status.pod_ip}:8000"
    return found
