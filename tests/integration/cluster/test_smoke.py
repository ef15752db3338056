"""The dev cluster is a real Kubernetes: API, scheduler, controllers, kwok nodes, LWS and RBAC.

The client takes manifests as dicts, as these tests write them; its type hints name only its model
classes, hence the `type: ignore[arg-type]` on those calls."""

from __future__ import annotations

import ssl
from typing import Any, cast

import httpx
import pytest
from kubernetes import client, config

from modelplex.devcluster.cluster import DevCluster
from modelplex.devcluster.nodes import GPU_PRODUCT_LABEL
from mpxtest.cluster import labels, phase
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster


def _pod(name: str, gpus: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": "engine",
                    "image": "vllm/vllm-openai:latest",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ]
        },
    }


def test_nodes_are_ready_gpu_nodes(kube: client.ApiClient) -> None:
    nodes = client.CoreV1Api(kube).list_node().items
    assert len(nodes) == 2
    for node in nodes:
        assert node.status is not None
        assert (node.status.allocatable or {})["nvidia.com/gpu"] == "8"
        assert labels(node)[GPU_PRODUCT_LABEL]
        ready = [c.status for c in node.status.conditions or [] if c.type == "Ready"]
        assert ready == ["True"]


def test_crd_and_custom_object(kube: client.ApiClient, namespace: str) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.smoke.modelplex.dev"},
        "spec": {
            "group": "smoke.modelplex.dev",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                            },
                        }
                    },
                }
            ],
        },
    }
    client.ApiextensionsV1Api(kube).create_custom_resource_definition(crd)  # type: ignore[arg-type]
    custom = client.CustomObjectsApi(kube)
    widget = {
        "apiVersion": "smoke.modelplex.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3},
    }

    def created() -> bool:
        custom.create_namespaced_custom_object("smoke.modelplex.dev", "v1", namespace, "widgets", widget)
        return True

    eventually(created, what="the Widget CRD to be served")
    got = custom.get_namespaced_custom_object("smoke.modelplex.dev", "v1", namespace, "widgets", "w")
    assert cast(dict[str, Any], got)["spec"] == {"size": 3}


def test_gpu_deployment_runs_on_a_gpu_node(kube: client.ApiClient, namespace: str) -> None:
    template = _pod("engine", gpus=1)
    deployment = {
        "metadata": {"name": "engine"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "engine"}}, "template": template},
    }
    client.AppsV1Api(kube).create_namespaced_deployment(namespace, deployment)  # type: ignore[arg-type]
    core = client.CoreV1Api(kube)

    def running_pod() -> client.V1Pod | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=engine").items
        return next((p for p in pods if phase(p) == "Running"), None)

    pod = eventually(running_pod, timeout=60, what="the GPU pod to run")
    assert pod.spec is not None
    assert pod.spec.node_name is not None
    assert pod.status is not None
    node = core.read_node(pod.spec.node_name)
    assert labels(node)[GPU_PRODUCT_LABEL]
    assert pod.status.pod_ip


def test_pod_asking_for_more_gpus_than_a_node_has_stays_pending(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(namespace, _pod("too-big", gpus=9))  # type: ignore[arg-type]

    def scheduling_failure() -> str | None:
        events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=too-big").items
        return next((e.message for e in events if e.reason == "FailedScheduling"), None)

    message = eventually(scheduling_failure, timeout=60, what="a FailedScheduling event")
    assert "nvidia.com/gpu" in message
    assert phase(core.read_namespaced_pod("too-big", namespace)) == "Pending"


def test_leaderworkerset_creates_leader_and_worker(kube: client.ApiClient, namespace: str) -> None:
    template = _pod("node", gpus=4)
    lws = {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "big-model"},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": template["spec"]}},
        },
    }
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "leaderworkerset.x-k8s.io", "v1", namespace, "leaderworkersets", lws
    )
    core = client.CoreV1Api(kube)

    def group_running() -> list[client.V1Pod] | None:
        pods = core.list_namespaced_pod(
            namespace, label_selector="leaderworkerset.sigs.k8s.io/name=big-model"
        )
        running = [p for p in pods.items if phase(p) == "Running"]
        return running if len(running) == 2 else None

    pods = eventually(group_running, timeout=90, what="the LWS leader and worker pods to run")
    indices = sorted(labels(p)["leaderworkerset.sigs.k8s.io/worker-index"] for p in pods)
    assert indices == ["0", "1"]
    leader = next(p for p in pods if labels(p)["leaderworkerset.sigs.k8s.io/worker-index"] == "0")
    worker = next(p for p in pods if p is not leader)
    # The pod webhook wires the group together: the worker knows its leader's address.
    assert worker.spec is not None
    assert leader.metadata is not None
    assert leader.metadata.name
    worker_env = {e.name: e.value for e in worker.spec.containers[0].env or []}
    assert (worker_env["LWS_LEADER_ADDRESS"] or "").startswith(leader.metadata.name)
    assert worker_env["LWS_GROUP_SIZE"] == "2"


def test_rbac_denies_a_service_account_without_a_role(
    kube: client.ApiClient, namespace: str, dev_cluster: DevCluster
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})  # type: ignore[arg-type]
    request = {"spec": {"expirationSeconds": 600}}
    status = core.create_namespaced_service_account_token("nobody", namespace, request).status  # type: ignore[arg-type]
    assert status is not None
    token = status.token
    ca = ssl.create_default_context(cafile=kube.configuration.ssl_ca_cert)
    with httpx.Client(
        base_url=dev_cluster.server, verify=ca, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        denied = http.get(f"/api/v1/namespaces/{namespace}/pods")
        assert denied.status_code == 403
        assert "forbidden" in denied.json()["message"]

        rbac = client.RbacAuthorizationV1Api(kube)
        rbac.create_namespaced_role(
            namespace,
            {  # type: ignore[arg-type]
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {  # type: ignore[arg-type]
                "metadata": {"name": "nobody-reads-pods"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
            },
        )
        eventually(
            lambda: http.get(f"/api/v1/namespaces/{namespace}/pods").status_code == 200,
            what="the Role to take effect",
        )


def test_user_kubeconfig_has_only_what_rbac_grants(kube: client.ApiClient, dev_cluster: DevCluster) -> None:
    kubeconfig = dev_cluster.user_kubeconfig("smoke-reader", groups=("smoke-readers",))
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_cluster_role(
        {  # type: ignore[arg-type]
            "metadata": {"name": "smoke-node-reader"},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
        }
    )
    rbac.create_cluster_role_binding(
        {  # type: ignore[arg-type]
            "metadata": {"name": "smoke-readers-read-nodes"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "smoke-node-reader",
            },
            "subjects": [{"kind": "Group", "name": "smoke-readers", "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    reader: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    with reader:
        core = client.CoreV1Api(reader)
        assert len(eventually(lambda: core.list_node().items, what="the group binding to apply")) == 2
        with pytest.raises(client.ApiException) as denied:
            core.list_namespaced_pod("default")
        assert denied.value.status == 403
