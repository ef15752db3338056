"""ModelDeployments + the EndpointSlices of their Services -> a Catalog (pure, no I/O).

The names this relies on are the operator's public contract (`modelplex.crds.labels`): the Service
of a ModelDeployment is named after it, serves port `http`, and selects exactly the pods that answer
API requests (single-node pods and multi-node leaders). Kubernetes' EndpointSlice controller turns
that Service into slices labelled `kubernetes.io/service-name=<name>`, with each pod's address and its
`ready` condition (false while the pod fails its readiness probe or is terminating).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from modelplex.crds import labels
from modelplex.gateway.discovery.base import Catalog, EndpointSpec, ModelSpec
from modelplex.gateway.routing.registry import DEFAULT_POLICY, POLICIES
from modelplex.kube.endpointslices import SERVICE_NAME_LABEL
from modelplex.kube.endpointslices import slice_endpoints as endpoints_on

Body = dict[str, Any]

# The CRD has no routing field; the gateway reads the policy from this annotation on the
# ModelDeployment (round-robin | least-load | prefix-affinity | session-affinity).
ROUTING_ANNOTATION = f"{labels.GROUP}/routing-policy"
# EndpointSlices copy their Service's labels, so the watch can ask for the operator's Services only.
SLICE_SELECTOR = labels.selector_string(
    {labels.MANAGED_BY: labels.MANAGED_BY_VALUE, labels.COMPONENT: labels.COMPONENT_ENDPOINT}
)


@dataclass(frozen=True)
class Built:
    catalog: Catalog
    problems: tuple[str, ...] = ()  # what was skipped or defaulted, for the log


def build_catalog(deployments: Iterable[Body], slices: Iterable[Body]) -> Built:
    """One model per ModelDeployment not being deleted; the oldest wins a served name used twice."""
    endpoints = endpoints_by_service(slices)
    models: dict[str, ModelSpec] = {}
    problems: list[str] = []
    for body in sorted(deployments, key=_age):
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            continue
        namespace, name = _namespace_name(body)
        served = served_name(body)
        if served in models:
            problems.append(f"{namespace}/{name} skipped: served name {served!r} already taken")
            continue
        routing, problem = routing_policy(body)
        if problem:
            problems.append(f"{namespace}/{name}: {problem}")
        models[served] = ModelSpec(
            name=served,
            deployment=f"{namespace}/{name}",
            access=frozenset(access_list(body)),
            routing=routing,
            max_model_len=max_model_len(body),
            endpoints=endpoints.get((namespace, name), ()),
        )
    return Built(Catalog(models=tuple(sorted(models.values(), key=lambda m: m.name))), tuple(problems))


def _namespace_name(body: Body) -> tuple[str, str]:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def _age(body: Body) -> tuple[str, str, str]:
    namespace, name = _namespace_name(body)
    return str((body.get("metadata") or {}).get("creationTimestamp", "")), namespace, name


def max_model_len(body: Body) -> int | None:
    value = ((body.get("spec") or {}).get("engine") or {}).get("maxModelLen")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def served_name(body: Body) -> str:
    """What the operator reported (status), else what it will report (spec), else the object's name."""
    status, model = body.get("status") or {}, (body.get("spec") or {}).get("model") or {}
    return str(status.get("servedName") or model.get("servedName") or _namespace_name(body)[1])


def access_list(body: Body) -> list[str]:
    access = (body.get("spec") or {}).get("access") or {}
    return [str(tenant) for tenant in access.get("tenants") or []]


def routing_policy(body: Body) -> tuple[str, str | None]:
    """The annotated policy, or the default and why when the annotation names no known policy."""
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(ROUTING_ANNOTATION)
    if value is None:
        return DEFAULT_POLICY, None
    if value not in POLICIES:
        return DEFAULT_POLICY, f"unknown {ROUTING_ANNOTATION} {value!r}, used {DEFAULT_POLICY}"
    return str(value), None


def endpoints_by_service(slices: Iterable[Body]) -> dict[tuple[str, str], tuple[EndpointSpec, ...]]:
    """(namespace, service) -> its endpoints, one per pod (a ready entry wins, then IPv4), by id."""
    merged: dict[tuple[str, str], dict[str, EndpointSpec]] = {}
    for body in sorted(slices, key=lambda s: (s.get("addressType") == "IPv6", _namespace_name(s))):
        service = ((body.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            continue
        found = merged.setdefault((_namespace_name(body)[0], service), {})
        for endpoint in slice_endpoints(body):
            kept = found.get(endpoint.name)
            if kept is None or (endpoint.ready and not kept.ready):
                found[endpoint.name] = endpoint
    return {key: tuple(sorted(found.values(), key=lambda e: e.name)) for key, found in merged.items()}


def slice_endpoints(body: Body) -> Iterator[EndpointSpec]:
    """The endpoints of one slice on the `http` port."""
    for found in endpoints_on(body, labels.HTTP_PORT_NAME):
        yield EndpointSpec(url=found.url, id=found.id, ready=found.ready)
