"""The operator on the real control plane, as its own process under its own ClusterRole, and the
tests' reads and writes of ModelDeployments (`kit`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from modelplex.devcluster.cluster import DevCluster
from modelplex.processes import free_port
from mpxtest import canary
from mpxtest.cluster import DEPLOY, deleting, free_gpus, phase
from mpxtest.metricsproxy import MetricsProxy
from mpxtest.wait import eventually

EXAMPLES = DEPLOY / "examples"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
MODELPLEX = str(Path(sys.executable).with_name("modelplex"))


class OperatorProcess:
    """`modelplex operator run` as a subprocess; stop() always reaps it."""

    def __init__(self, kubeconfig: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.env = env or {}
        self.metrics_url: str | None = None  # where its /metrics are served, when asked for
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [MODELPLEX, "operator", "run", "--log-level", "DEBUG", "--kubeconfig", str(self.kubeconfig)]
        canary.watch(self.log, "the operator's log")
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )

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

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no shutdown handlers run."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_operator(
    kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> Iterator[OperatorProcess]:
    """`modelplex operator run` with `env`, logging into a folder of its own, stopped afterwards."""
    process = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log", env)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    with running_operator(operator_kubeconfig, tmp_path_factory) as process:
        yield process


# An autoscaler that decides every second on windows of seconds, so a test sees it act in seconds.
FAST_AUTOSCALER = {
    "MODELPLEX_AUTOSCALER_INTERVAL_SECONDS": "1",
    "MODELPLEX_AUTOSCALER_STABLE_WINDOW_SECONDS": "6",
    "MODELPLEX_AUTOSCALER_PANIC_WINDOW_SECONDS": "3",
    "MODELPLEX_AUTOSCALER_SCALE_DOWN_WINDOW_SECONDS": "6",
}


@pytest.fixture(scope="module")
def autoscaled_operator(
    operator_kubeconfig: Path, metrics_proxy: MetricsProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator with a fast autoscaler that scrapes kwok's pods through `metrics_proxy`."""
    metrics = f"127.0.0.1:{free_port()}"
    env = {
        **FAST_AUTOSCALER,
        "HTTP_PROXY": metrics_proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "MODELPLEX_OPERATOR_METRICS_BIND": metrics,
    }
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(operator_kubeconfig, log, env)
    process.metrics_url = f"http://{metrics}/metrics"
    process.start()
    try:
        yield process
    finally:
        process.stop()


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
        body = self.custom.get_namespaced_custom_object(
            "modelplex.dev", "v1alpha1", namespace, "modeldeployments", name
        )
        return cast(dict[str, Any], body)

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
        return cast(list[dict[str, Any]], cast(dict[str, Any], found)["items"])

    def running_pods(self, namespace: str, selector: str = "") -> list[client.V1Pod]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [p for p in pods if phase(p) == "Running" and not deleting(p)]

    def wait_free_gpus(self, wanted: int, total: int = 16) -> None:
        free_gpus(self.core, wanted, total)

    def events(self, namespace: str, name: str) -> list[client.CoreV1Event]:
        selector = f"involvedObject.name={name},involvedObject.kind=ModelDeployment"
        events: list[client.CoreV1Event] = self.core.list_namespaced_event(
            namespace, field_selector=selector
        ).items
        return events


@pytest.fixture(scope="session")
def kit(kube: client.ApiClient, dynamic: DynamicClient, dev_cluster: DevCluster, crd: None) -> Kit:
    return Kit(kube, dynamic, dev_cluster.kubeconfig)
