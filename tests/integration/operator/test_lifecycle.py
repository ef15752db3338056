"""Drift repair, cascade deletion, restart without duplicates, scaling, and changes of shape."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster


def _md(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"source": "hf://org/model"}, **spec},
    }


def _children(kit: Any, namespace: str) -> dict[str, list[str]]:
    selector = "app.kubernetes.io/managed-by=modelplex-operator"
    policies = kit.dynamic.resources.get(api_version="policy/v1", kind="PodDisruptionBudget")
    return {
        "Deployment": [
            d.metadata.uid
            for d in kit.apps.list_namespaced_deployment(namespace, label_selector=selector).items
        ],
        "Service": [
            s.metadata.uid for s in kit.core.list_namespaced_service(namespace, label_selector=selector).items
        ],
        "PodDisruptionBudget": [
            p.metadata.uid for p in policies.get(namespace=namespace, label_selector=selector).items
        ],
        "LeaderWorkerSet": [w["metadata"]["uid"] for w in kit.lws(namespace)],
    }


def test_deleted_and_edited_children_are_restored(kit: Any, operator: Any, namespace: str) -> None:
    kit.wait_free_gpus(2)
    kit.create(_md("drift", replicas=2), namespace)
    kit.wait_condition(namespace, "drift", "True", "AllReplicasReady")
    first = kit.apps.read_namespaced_deployment("drift", namespace).metadata.uid

    kit.apps.delete_namespaced_deployment("drift", namespace)
    eventually(
        lambda: kit.apps.read_namespaced_deployment("drift", namespace).metadata.uid != first,
        timeout=15,
        what="the deleted Deployment to be recreated",
    )
    kit.core.delete_namespaced_service("drift", namespace)
    eventually(
        lambda: kit.core.read_namespaced_service("drift", namespace),
        timeout=15,
        what="the deleted Service to be recreated",
    )

    kit.apps.patch_namespaced_deployment("drift", namespace, {"spec": {"replicas": 5}})
    eventually(
        lambda: kit.apps.read_namespaced_deployment("drift", namespace).spec.replicas == 2,
        timeout=15,
        what="the edited replicas to be reverted",
    )
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "engine", "image": "evil:latest"}]}}}}
    kit.apps.patch_namespaced_deployment("drift", namespace, patch)
    eventually(
        lambda: (
            kit.apps.read_namespaced_deployment("drift", namespace).spec.template.spec.containers[0].image
            == "vllm/vllm-openai:v0.31.0"
        ),
        timeout=15,
        what="the edited image to be reverted",
    )
    assert any(e.reason == "RepairedDrift" for e in kit.events(namespace, "drift"))
    kit.wait_condition(namespace, "drift", "True", "AllReplicasReady")


def test_deleting_the_model_deployment_deletes_its_children(kit: Any, operator: Any, namespace: str) -> None:
    kit.wait_free_gpus(1)
    kit.create(_md("doomed"), namespace)
    kit.wait_condition(namespace, "doomed", "True", "AllReplicasReady")
    assert kit.running_pods(namespace)
    result = kit.kubectl("delete", "md", "doomed", "-n", namespace)
    assert result.returncode == 0, result.stderr
    eventually(
        lambda: not any(_children(kit, namespace).values()), timeout=60, what="owned children to be collected"
    )
    eventually(lambda: not kit.running_pods(namespace), timeout=60, what="engine pods to go")


def test_restart_resumes_without_duplicates(kit: Any, operator: Any, namespace: str) -> None:
    kit.wait_free_gpus(2)
    kit.create(_md("steady"), namespace)
    kit.wait_condition(namespace, "steady", "True", "AllReplicasReady")
    before = _children(kit, namespace)
    transition = kit.condition(namespace, "steady")["lastTransitionTime"]

    operator.stop()
    kit.create(_md("while-down"), namespace)  # created while no operator runs
    kit.apps.delete_namespaced_deployment("steady", namespace)  # and drift while it is down
    operator.start()

    kit.wait_condition(namespace, "while-down", "True", "AllReplicasReady")
    eventually(
        lambda: len(kit.apps.list_namespaced_deployment(namespace).items) == 2,
        timeout=30,
        what="the deleted Deployment to be recreated after the restart",
    )
    kit.wait_condition(namespace, "steady", "True", "AllReplicasReady")
    after = _children(kit, namespace)
    assert len(after["Deployment"]) == 2
    assert len(after["Service"]) == 2
    assert len(after["PodDisruptionBudget"]) == 2
    assert set(before["Service"]) <= set(after["Service"])  # untouched children kept, none duplicated
    assert set(before["PodDisruptionBudget"]) <= set(after["PodDisruptionBudget"])
    deployments = kit.apps.list_namespaced_deployment(namespace).items
    assert sorted(d.metadata.name for d in deployments) == ["steady", "while-down"]
    current = kit.condition(namespace, "steady")
    assert current["status"] == "True"
    # Ready flipped while the Deployment was recreated, or stayed True; either way it is True now.
    assert current["lastTransitionTime"] >= transition


def test_kubectl_scale_changes_the_workload(kit: Any, operator: Any, namespace: str) -> None:
    kit.wait_free_gpus(3)
    kit.create(_md("scaled"), namespace)
    kit.wait_condition(namespace, "scaled", "True", "AllReplicasReady")
    result = kit.kubectl("scale", "md/scaled", "--replicas=3", "-n", namespace)
    assert result.returncode == 0, result.stderr
    eventually(
        lambda: kit.apps.read_namespaced_deployment("scaled", namespace).spec.replicas == 3,
        timeout=15,
        what="the Deployment to get 3 replicas",
    )
    eventually(
        lambda: kit.md(namespace, "scaled")["status"].get("readyReplicas") == 3,
        timeout=60,
        what="3 ready replicas in status",
    )
    ready = kit.wait_condition(namespace, "scaled", "True", "AllReplicasReady")
    assert ready["observedGeneration"] == kit.md(namespace, "scaled")["metadata"]["generation"]
    scale = kit.custom.get_namespaced_custom_object_scale(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", "scaled"
    )
    assert scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == "modelplex.dev/deployment=scaled,modelplex.dev/serving=true"


def test_growing_past_a_node_switches_to_a_leader_worker_set(kit: Any, operator: Any, namespace: str) -> None:
    kit.wait_free_gpus(16)
    kit.create(_md("grows", parallelism={"tensor": 8}), namespace)
    kit.wait_condition(namespace, "grows", "True", "AllReplicasReady")
    kit.create(_md("grows", parallelism={"tensor": 8, "pipeline": 2}), namespace)
    eventually(lambda: len(kit.lws(namespace)) == 1, timeout=15, what="a LeaderWorkerSet")
    eventually(
        lambda: not kit.apps.list_namespaced_deployment(namespace).items,
        timeout=15,
        what="the Deployment to be deleted",
    )
    # Ready may still be True from the single-node Deployment; wait for the group's own pods.
    eventually(
        lambda: len(kit.running_pods(namespace, "modelplex.dev/deployment=grows")) == 2,
        timeout=90,
        what="the LeaderWorkerSet's leader and worker to run",
    )
    kit.wait_condition(namespace, "grows", "True", "AllReplicasReady", timeout=90)


def test_operator_runs_without_cluster_admin(kit: Any, operator: Any, kube: client.ApiClient) -> None:
    review = client.AuthorizationV1Api(kube).create_subject_access_review(
        {  # type: ignore[arg-type]  # the client takes dicts; its hints name only its models
            "spec": {
                "user": "system:serviceaccount:modelplex-system:modelplex-operator",
                "resourceAttributes": {"verb": "delete", "resource": "secrets", "namespace": "default"},
            }
        }
    )
    assert review.status is not None
    assert review.status.allowed is False
    assert "Traceback" not in operator.logs()
    assert 'User "system:serviceaccount:modelplex-system:modelplex-operator" cannot' not in operator.logs()
