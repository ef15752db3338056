"""The operator on the real control plane, as its own process under its own ClusterRole."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

import modelplex
from modelplex.devcluster.cluster import DevCluster
from mpxtest.cluster import apply_manifest, fresh_namespace, install_crd
from mpxtest.wait import eventually

ROOT = Path(modelplex.__file__).parent
RBAC = ROOT / "deploy" / "operator" / "rbac.yaml"
EXAMPLES = ROOT / "deploy" / "examples"
OPERATOR_USER = "system:serviceaccount:modelplex-system:modelplex-operator"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
MODELPLEX = str(Path(sys.executable).with_name("modelplex"))


@pytest.fixture(scope="session")
def dynamic(kube: client.ApiClient) -> DynamicClient:
    return DynamicClient(kube)


@pytest.fixture(scope="session")
def crd(dynamic: DynamicClient) -> None:
    install_crd(dynamic)


@pytest.fixture(scope="session")
def operator_kubeconfig(dynamic: DynamicClient, dev_cluster: DevCluster, crd: None) -> Path:
    for manifest in yaml.safe_load_all(RBAC.read_text()):
        apply_manifest(dynamic, manifest)
    return dev_cluster.user_kubeconfig(OPERATOR_USER)


class OperatorProcess:
    """`modelplex operator run` as a subprocess; stop() always reaps it."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [MODELPLEX, "operator", "run", "--kubeconfig", str(self.kubeconfig)]
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def gpu_pods(core: client.CoreV1Api) -> list[client.V1Pod]:
    pods = core.list_pod_for_all_namespaces().items
    return [
        p for p in pods if any((c.resources.limits or {}).get("nvidia.com/gpu") for c in p.spec.containers)
    ]


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    with fresh_namespace(kube, "op") as name:
        yield name


class Kit:
    """Reads and writes of ModelDeployments and their children for the tests."""

    def __init__(self, kube: client.ApiClient, dynamic: DynamicClient, kubeconfig: Path) -> None:
        self.kube = kube
        self.dynamic = dynamic
        self.kubeconfig = kubeconfig
        self.core = client.CoreV1Api(kube)
        self.apps = client.AppsV1Api(kube)
        self.custom = client.CustomObjectsApi(kube)

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def apply_example(self, name: str, namespace: str) -> dict[str, Any]:
        manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
        self.create(manifest, namespace)
        return manifest

    def create(self, manifest: dict[str, Any], namespace: str) -> None:
        result = self.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
        assert result.returncode == 0, result.stderr

    def md(self, namespace: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "modelplex.dev", "v1alpha1", namespace, "modeldeployments", name
        )
        return body

    def condition(self, namespace: str, name: str, kind: str = "Ready") -> dict[str, Any] | None:
        conditions = (self.md(namespace, name).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == kind), None)

    def wait_condition(
        self,
        namespace: str,
        name: str,
        status: str,
        reason: str | None = None,
        kind: str = "Ready",
        timeout: float = 60,
    ) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            found = self.condition(namespace, name, kind)
            ok = found and found["status"] == status and (reason is None or found["reason"] == reason)
            return found if ok else None

        return eventually(
            matches, timeout=timeout, what=f"{kind}={status} reason={reason} on {namespace}/{name}"
        )

    def lws(self, namespace: str) -> list[dict[str, Any]]:
        found = self.custom.list_namespaced_custom_object(
            "leaderworkerset.x-k8s.io", "v1", namespace, "leaderworkersets"
        )
        items: list[dict[str, Any]] = found["items"]
        return items

    def running_pods(self, namespace: str, selector: str = "") -> list[client.V1Pod]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]

    def wait_free_gpus(self, wanted: int, total: int = 16) -> None:
        """Waits until `wanted` GPUs are free: other tests share the fleet and their pods may linger."""

        def free() -> bool:
            held = 0
            for pod in gpu_pods(self.core):
                if pod.status.phase not in ("Succeeded", "Failed"):
                    limits = [c.resources.limits or {} for c in pod.spec.containers]
                    held += sum(int(limit.get("nvidia.com/gpu", 0)) for limit in limits)
            return total - held >= wanted

        eventually(free, timeout=90, what=f"{wanted} free GPUs in the shared dev cluster")

    def events(self, namespace: str, name: str) -> list[client.CoreV1Event]:
        selector = f"involvedObject.name={name},involvedObject.kind=ModelDeployment"
        events: list[client.CoreV1Event] = self.core.list_namespaced_event(
            namespace, field_selector=selector
        ).items
        return events


@pytest.fixture(scope="session")
def kit(kube: client.ApiClient, dynamic: DynamicClient, dev_cluster: DevCluster, crd: None) -> Kit:
    return Kit(kube, dynamic, dev_cluster.kubeconfig)
