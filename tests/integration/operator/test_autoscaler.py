"""The autoscaler on the real control plane: replicas follow the load the engines and gateways report.

kwok's pods run nothing, so their /metrics pages (and a gateway's) come from `metrics_proxy`, which
the operator reaches through HTTP_PROXY. The operator runs with seconds-long windows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes.dynamic import DynamicClient

from mpxtest.cluster import apply_manifest
from mpxtest.metricsproxy import MetricsProxy, engine_page, gateway_page
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster
GATEWAY_ADDRESS = "10.250.0.7"  # no pod has it: the proxy answers for the gateway


def _md(name: str, replicas: int, scaling: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"source": "hf://org/model"}, "replicas": replicas}
    if scaling is not None:
        spec["scaling"] = scaling
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def _replicas(kit: Any, namespace: str, name: str) -> int:
    return int(kit.md(namespace, name)["spec"]["replicas"])


def _wait_replicas(kit: Any, namespace: str, name: str, wanted: int, timeout: float = 45) -> None:
    eventually(
        lambda: _replicas(kit, namespace, name) == wanted,
        timeout=timeout,
        what=f"spec.replicas of {name} to become {wanted}",
    )


def _decisions(kit: Any, namespace: str, name: str) -> list[tuple[int, int, str]]:
    scaling = (kit.md(namespace, name).get("status") or {}).get("scaling") or {}
    return [(d["from"], d["to"], d["reason"]) for d in scaling.get("decisions") or []]


def _events(kit: Any, namespace: str, name: str, reason: str) -> list[Any]:
    return [e for e in kit.events(namespace, name) if e.reason == reason]


@pytest.fixture
def gateway(dynamic: DynamicClient, metrics_proxy: MetricsProxy) -> Iterator[str]:
    """One gateway endpoint of the gateway Service, which the autoscaler finds by its EndpointSlice."""
    address = f"{GATEWAY_ADDRESS}:8080"
    metrics_proxy.pages[address] = gateway_page("nobody")
    body = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "modelplex-gateway-test",
            "namespace": "modelplex-system",
            "labels": {"kubernetes.io/service-name": "modelplex-gateway"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [GATEWAY_ADDRESS], "conditions": {"ready": True}}],
    }
    apply_manifest(dynamic, body)
    try:
        yield address
    finally:
        dynamic.resources.get(api_version="discovery.k8s.io/v1", kind="EndpointSlice").delete(
            name="modelplex-gateway-test", namespace="modelplex-system"
        )
        metrics_proxy.pages.pop(address, None)


def test_replicas_follow_the_engines_load_and_a_manual_scale_is_overridden(
    kit: Any, autoscaled_operator: Any, namespace: str, metrics_proxy: MetricsProxy, gateway: str
) -> None:
    kit.wait_free_gpus(5)
    metrics_proxy.default = engine_page(running=0)
    scaling = {"minReplicas": 1, "maxReplicas": 4, "targets": {"queueDepthPerReplica": 8}}
    kit.create(_md("auto", 1, scaling), namespace)
    kit.wait_condition(namespace, "auto", "True", "AllReplicasReady")
    kit.wait_condition(namespace, "auto", "True", "TooFewReplicas", kind="ScalingLimited")
    assert kit.condition(namespace, "auto", "ScalingActive")["status"] == "True"
    assert kit.condition(namespace, "auto", "AbleToScale")["status"] == "True"

    metrics_proxy.default = engine_page(running=40)  # on every replica: twice what four can take
    _wait_replicas(kit, namespace, "auto", 4)
    kit.wait_condition(namespace, "auto", "True", "TooManyReplicas", kind="ScalingLimited")
    (up,) = eventually(lambda: _events(kit, namespace, "auto", "Panic"), what="an Event for the scale-up")
    assert up.message.startswith("Scaled up from 1 to 4: panic: 40 requests over 1 ready x 8")
    managers = {f["manager"] for f in kit.md(namespace, "auto")["metadata"]["managedFields"]}
    assert "modelplex-autoscaler" in managers
    metrics = httpx.get(autoscaled_operator.metrics_url).text
    labels = f'deployment="{namespace}/auto",model="auto"'
    assert f"modelplex_autoscaler_desired_replicas{{{labels}}} 4.0" in metrics
    assert f'modelplex_autoscaler_decisions_total{{{labels},reason="Panic"}} 1.0' in metrics

    result = kit.kubectl("scale", "-n", namespace, "md/auto", "--replicas=2")
    assert result.returncode == 0, result.stderr
    eventually(lambda: _events(kit, namespace, "auto", "OverrodeManualScale"), what="an Event saying so")
    _wait_replicas(kit, namespace, "auto", 4)

    metrics_proxy.default = engine_page(running=0)
    _wait_replicas(kit, namespace, "auto", 1, timeout=90)  # after panic and stabilisation, by halves

    # status.scaling comes with the controller's next reconcile, after the scale write: wait for it.
    def down_to_one() -> list[tuple[int, int, str]] | None:
        found = _decisions(kit, namespace, "auto")
        return found if found and found[-1][1] == 1 else None

    decisions = eventually(down_to_one, what="the last scale-down in status.scaling")
    assert decisions[:2] == [(1, 4, "Panic"), (2, 4, "Panic")]
    downs = decisions[2:]  # how the window's averages fall decides the steps: each at most halves
    assert downs[0][0] == 4
    assert downs[-1][1] == 1
    assert all(before > after >= before / 2 for before, after, _ in downs)
    kit.wait_condition(namespace, "auto", "True", "AllReplicasReady")

    metrics_proxy.default = 503  # the engines stop answering: nothing is decided from silence
    kit.wait_condition(namespace, "auto", "False", "MetricsUnavailable", kind="ScalingActive")
    assert _replicas(kit, namespace, "auto") == 1


def test_idle_goes_to_zero_and_a_held_request_brings_exactly_one_replica(
    kit: Any, autoscaled_operator: Any, namespace: str, metrics_proxy: MetricsProxy, gateway: str
) -> None:
    kit.wait_free_gpus(1)
    metrics_proxy.default = engine_page(running=0)
    scaling = {"minReplicas": 0, "maxReplicas": 3, "scaleToZeroIdleSeconds": 3}
    kit.create(_md("sleepy", 1, scaling), namespace)
    _wait_replicas(kit, namespace, "sleepy", 0)
    kit.wait_condition(namespace, "sleepy", "False", "ScaledToZero")

    metrics_proxy.pages[gateway] = gateway_page("sleepy", queued=2)  # requests held at zero replicas
    _wait_replicas(kit, namespace, "sleepy", 1)
    kit.wait_condition(namespace, "sleepy", "True", "AllReplicasReady")
    assert _decisions(kit, namespace, "sleepy") == [(1, 0, "Idle"), (0, 1, "ScaleFromZero")]


def test_a_model_deployment_without_scaling_is_never_touched(
    kit: Any, autoscaled_operator: Any, namespace: str, metrics_proxy: MetricsProxy
) -> None:
    kit.wait_free_gpus(1)
    metrics_proxy.default = engine_page(running=400)
    kit.create(_md("manual", 1, None), namespace)
    kit.wait_condition(namespace, "manual", "True", "AllReplicasReady")
    time.sleep(5)  # five decisions of a one-second autoscaler
    body = kit.md(namespace, "manual")
    assert body["spec"]["replicas"] == 1
    assert "scaling" not in (body.get("status") or {})
    assert {c["type"] for c in body["status"]["conditions"]} == {
        "Ready",
        "Available",
        "Progressing",
        "Degraded",
    }
    assert "modelplex-autoscaler" not in {f["manager"] for f in body["metadata"]["managedFields"]}
