"""The one table of resource paths."""

from __future__ import annotations

import pytest

from modelplex.crds import labels
from modelplex.kube.resources import RESOURCES, collection_path, manifest_path, resource_path


def test_namespaced_kinds_have_object_collection_and_all_namespace_paths() -> None:
    assert resource_path("apps/v1", "Deployment", "ns", "d") == "/apis/apps/v1/namespaces/ns/deployments/d"
    assert collection_path("v1", "Service", "ns") == "/api/v1/namespaces/ns/services"
    assert (
        collection_path("discovery.k8s.io/v1", "EndpointSlice") == "/apis/discovery.k8s.io/v1/endpointslices"
    )
    assert (
        resource_path(labels.API_VERSION, labels.KIND, "ns", "m", "scale")
        == "/apis/modelplex.dev/v1alpha1/namespaces/ns/modeldeployments/m/scale"
    )


def test_cluster_scoped_kinds_have_no_namespace() -> None:
    assert resource_path("v1", "Node", name="n-0", subresource="status") == "/api/v1/nodes/n-0/status"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "x"},
    }
    assert manifest_path(crd) == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x"
    with pytest.raises(ValueError, match="cluster-scoped"):
        resource_path("v1", "Namespace", "ns", "x")


def test_mistakes_are_named() -> None:
    with pytest.raises(ValueError, match="namespaced"):
        resource_path("v1", "Service", name="a")
    with pytest.raises(ValueError, match="status subresource"):
        resource_path("v1", "Node", subresource="status")
    with pytest.raises(KeyError):
        resource_path("v1", "Secret", "ns", "a")


def test_the_table_covers_every_kind_the_operator_the_gateway_and_the_dev_cluster_touch() -> None:
    kinds = {kind for _, kind in RESOURCES}
    assert {
        "Deployment",
        "LeaderWorkerSet",
        "Service",
        "PodDisruptionBudget",
        "PersistentVolumeClaim",
        "Event",
        labels.KIND,
        "EndpointSlice",
        "Node",
        "Namespace",
        "ServiceAccount",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    } <= kinds
