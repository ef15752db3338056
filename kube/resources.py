"""Where each kind lives in the API: one table of paths for every kind Modelplex reads or writes.

The operator writes Deployments, LeaderWorkerSets, Services, PodDisruptionBudgets, cache
PersistentVolumeClaims, Events and ModelDeployment status; the gateway watches ModelDeployments and
EndpointSlices; `modelplex scale` writes the scale subresource; the dev cluster applies Nodes,
Namespaces, CRDs and webhook configurations. A kind that is not in the table is a programming
error, named by the KeyError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplex.crds import labels


@dataclass(frozen=True)
class Resource:
    prefix: str  # /api/v1 (core) or /apis/<group>/<version>
    plural: str
    namespaced: bool


def _core(plural: str, namespaced: bool = True) -> Resource:
    return Resource("/api/v1", plural, namespaced)


def _group(api_version: str, plural: str, namespaced: bool = True) -> Resource:
    return Resource(f"/apis/{api_version}", plural, namespaced)


RESOURCES: dict[tuple[str, str], Resource] = {
    ("v1", "Event"): _core("events"),
    ("v1", "Namespace"): _core("namespaces", namespaced=False),
    ("v1", "Node"): _core("nodes", namespaced=False),
    ("v1", "PersistentVolumeClaim"): _core("persistentvolumeclaims"),
    ("v1", "Pod"): _core("pods"),
    ("v1", "Service"): _core("services"),
    ("v1", "ServiceAccount"): _core("serviceaccounts"),
    ("apps/v1", "Deployment"): _group("apps/v1", "deployments"),
    ("policy/v1", "PodDisruptionBudget"): _group("policy/v1", "poddisruptionbudgets"),
    ("discovery.k8s.io/v1", "EndpointSlice"): _group("discovery.k8s.io/v1", "endpointslices"),
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): _group(
        "leaderworkerset.x-k8s.io/v1", "leaderworkersets"
    ),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): _group(
        "apiextensions.k8s.io/v1", "customresourcedefinitions", namespaced=False
    ),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): _group(
        "admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", namespaced=False
    ),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): _group(
        "admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", namespaced=False
    ),
    (labels.API_VERSION, labels.KIND): _group(labels.API_VERSION, labels.PLURAL),
}


def resource_path(
    api_version: str,
    kind: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The path of one object (with `name`) or of a collection (without; every namespace when
    `namespace` is None), optionally of a subresource such as `status` or `scale`."""
    resource = RESOURCES[(api_version, kind)]
    if namespace is not None and not resource.namespaced:
        raise ValueError(f"{kind} is cluster-scoped: it has no namespace (got {namespace!r})")
    if resource.namespaced and namespace is None and name is not None:
        raise ValueError(f"{kind} {name} is namespaced: name its namespace")
    if subresource is not None and name is None:
        raise ValueError(f"the {subresource} subresource of {kind} needs an object name")
    path = resource.prefix
    if namespace is not None:
        path += f"/namespaces/{namespace}"
    path += f"/{resource.plural}"
    if name is not None:
        path += f"/{name}"
    if subresource is not None:
        path += f"/{subresource}"
    return path


def collection_path(api_version: str, kind: str, namespace: str | None = None) -> str:
    """The collection of `kind` in `namespace`, or in every namespace when None."""
    return resource_path(api_version, kind, namespace)


def manifest_path(manifest: dict[str, Any], subresource: str | None = None, named: bool = True) -> str:
    """The path of the object a manifest describes (its collection when not `named`)."""
    metadata = manifest.get("metadata") or {}
    return resource_path(
        manifest["apiVersion"],
        manifest["kind"],
        metadata.get("namespace"),
        metadata["name"] if named else None,
        subresource,
    )
