"""Fault: the kube-apiserver stopped for 10 s and started again, under a running operator and the
gateway's discovery.

Both watches resume: the operator still acts on a change made right after the restart, and the
gateway stops routing to an endpoint that went away within a few seconds of the API saying so (the
time is measured: endpoint not ready in the API's EndpointSlices to endpoint gone from the gateway's
catalog). The EndpointSlices themselves are kube-controller-manager's: its informers resume with their
own backoff (client-go's, up to a minute after an outage), which is not the gateway's to shorten.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from modelplex.devcluster.cluster import DevCluster
from modelplex.gateway.discovery.base import ModelSpec
from modelplex.gateway.discovery.kube_catalog import SLICE_SELECTOR
from mpxtest.cluster import free_gpus
from mpxtest.discovery import RunningSource, model_deployment, serving_pods
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster

DOWN_SECONDS = 10.0
FEW_SECONDS = 10.0  # the longest an endpoint the API no longer lists as ready may stay routable


def _ready(model: ModelSpec | None) -> set[str]:
    return set() if model is None else {e.name for e in model.endpoints if e.ready}


def test_watches_resume_after_an_apiserver_restart(
    dev_cluster: DevCluster, kube: client.ApiClient, operator: Any, namespace: str, discovered: RunningSource
) -> None:
    core, custom = client.CoreV1Api(kube), client.CustomObjectsApi(kube)
    free_gpus(core, 2)
    custom.create_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", model_deployment("survive", "survive", 2)
    )

    def two_pods() -> dict[str, str] | None:
        found = serving_pods(core, namespace, "survive")
        return found if len(found) == 2 else None

    pods = eventually(two_pods, 60, 0.2, what="two serving pods")
    eventually(lambda: _ready(discovered.model("survive")) == set(pods), 60, 0.1, what="both discovered")

    dev_cluster.restart("kube-apiserver", down_seconds=DOWN_SECONDS)
    # Right after the restart: scale to one. The operator must see it (its watch resumed) and the
    # gateway must drop the endpoint of the pod that goes (its watch resumed too).
    custom.patch_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", "survive", {"spec": {"replicas": 1}}
    )

    def one_pod_left() -> set[str] | None:
        left = set(serving_pods(core, namespace, "survive"))
        return left if len(left) == 1 else None

    kept = eventually(one_pod_left, 90, 0.1, what="the operator to scale to one pod after the restart")
    pod_gone_at = time.monotonic()
    slices = client.DiscoveryV1Api(kube)

    def ready_in_the_api() -> set[str]:
        listed = slices.list_namespaced_endpoint_slice(namespace, label_selector=SLICE_SELECTOR).items
        endpoints = [e for found in listed for e in found.endpoints or []]
        # An unset `ready` means unknown, which the EndpointSlice API says to treat as ready.
        ready = [e for e in endpoints if not (e.conditions and e.conditions.ready is False)]
        return {str(e.target_ref.name) for e in ready if e.target_ref is not None}

    eventually(lambda: ready_in_the_api() == kept, 180, 0.05, what="the EndpointSlices to drop it")
    gone_at = time.monotonic()
    eventually(lambda: _ready(discovered.model("survive")) == kept, 60, 0.05, what="the gateway to drop it")
    stale = time.monotonic() - gone_at
    print(
        f"apiserver restart: endpoint dropped by the gateway {stale:.1f} s after the EndpointSlices"
        f" ({gone_at - pod_gone_at:.1f} s after its pod stopped serving)"
    )
    assert stale <= FEW_SECONDS
