"""The operator's autoscaler reading its signals from Prometheus, on the real control plane: the
operator scrapes nothing itself (no proxy to kwok's pods); a real Prometheus scrapes the pods'
pages through `metrics_proxy`, and replicas follow the load it holds, until its scrapes fail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelplex.processes import free_port
from mpxtest.metricsproxy import MetricsProxy, engine_page
from mpxtest.operatorproc import FAST_AUTOSCALER, OperatorProcess, running_operator
from mpxtest.prometheus import PrometheusServer
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster
NAME = "from-prometheus"


@pytest.fixture(scope="module")
def proxied_prometheus(
    prometheus_bin: Path, metrics_proxy: MetricsProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    server = PrometheusServer(
        prometheus_bin, tmp_path_factory.mktemp("prometheus"), proxy_url=metrics_proxy.url
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def prometheus_operator(
    operator_kubeconfig: Path, proxied_prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator with a fast autoscaler reading Prometheus; it cannot reach the pods at all."""
    env = {
        **FAST_AUTOSCALER,
        "MODELPLEX_AUTOSCALER_PROMETHEUS_URL": proxied_prometheus.url,
        "MODELPLEX_AUTOSCALER_PROMETHEUS_MAX_AGE_SECONDS": "5",
        "MODELPLEX_OPERATOR_METRICS_BIND": f"127.0.0.1:{free_port()}",
    }
    with running_operator(operator_kubeconfig, tmp_path_factory, env) as process:
        yield process


@pytest.fixture
def pods_scraped(kit: Any, namespace: str, proxied_prometheus: PrometheusServer) -> Iterator[None]:
    """Prometheus' targets follow the pods of the namespace (what a PodMonitor's discovery does)."""
    done = threading.Event()

    def follow() -> None:
        while not done.wait(0.5):
            pods = kit.core.list_namespaced_pod(namespace).items
            proxied_prometheus.scrape(
                "pods", sorted(f"{p.status.pod_ip}:8000" for p in pods if p.status.pod_ip)
            )

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    yield
    done.set()
    thread.join(5)
    proxied_prometheus.scrape("pods", [])


def _replicas(kit: Any, namespace: str) -> int:
    return int(kit.md(namespace, NAME)["spec"]["replicas"])


def test_replicas_follow_the_load_prometheus_holds_and_stop_when_its_scrapes_fail(
    kit: Any,
    prometheus_operator: OperatorProcess,
    namespace: str,
    metrics_proxy: MetricsProxy,
    pods_scraped: None,
) -> None:
    kit.wait_free_gpus(5)
    metrics_proxy.default = engine_page(running=0)
    scaling = {"minReplicas": 1, "maxReplicas": 4, "targets": {"queueDepthPerReplica": 8}}
    manifest = {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME},
        "spec": {"model": {"source": "hf://org/model"}, "replicas": 1, "scaling": scaling},
    }
    kit.create(manifest, namespace)
    kit.wait_condition(namespace, NAME, "True", "AllReplicasReady")
    kit.wait_condition(namespace, NAME, "True", "TooFewReplicas", kind="ScalingLimited", timeout=60)
    assert kit.condition(namespace, NAME, "ScalingActive")["status"] == "True"

    metrics_proxy.default = engine_page(running=40)  # twice what four replicas take
    eventually(lambda: _replicas(kit, namespace) == 4, timeout=90, what="4 replicas from Prometheus' load")

    metrics_proxy.default = 503  # Prometheus' scrapes fail: up 0, nothing decided from silence
    kit.wait_condition(namespace, NAME, "False", "MetricsUnavailable", kind="ScalingActive", timeout=60)
    message = kit.condition(namespace, NAME, "ScalingActive")["message"]
    assert "up 0" in message or "no scrape" in message
    assert _replicas(kit, namespace) == 4
