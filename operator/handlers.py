"""kopf handlers (thin): watch events feed the Store and queue the owning ModelDeployment.

Handlers return nothing: kopf would write a return value into the object's status. They are
coroutines because kopf runs plain functions in a thread pool, and the Store and the work queue
belong to the event loop.

Nodes are read by a kopf index handler: kopf holds every other handler until the initial listing
of all indexed resources is done, so no ModelDeployment is reconciled before the operator knows
the GPU nodes (else a model too big for them would get a workload at start-up, removed a moment
later). Index handlers are not called for deletions; an event handler takes those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kopf

from modelplex.crds import labels
from modelplex.kube.credentials import KubeCredentials
from modelplex.operator.controller import Controller
from modelplex.operator.gpus import node_gpus

# (group, version, plural, apiVersion, kind) of every child kind the operator watches.
CHILD_RESOURCES = (
    ("apps", "v1", "deployments", "apps/v1", "Deployment"),
    ("leaderworkerset.x-k8s.io", "v1", "leaderworkersets", "leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"),
    ("", "v1", "services", "v1", "Service"),
    ("policy", "v1", "poddisruptionbudgets", "policy/v1", "PodDisruptionBudget"),
    ("", "v1", "persistentvolumeclaims", "v1", "PersistentVolumeClaim"),
)
MANAGED = {labels.MANAGED_BY: labels.MANAGED_BY_VALUE}


def _typed(event: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    # Objects from the initial listing carry no apiVersion/kind; watch events do.
    return {**event["object"], "apiVersion": api_version, "kind": kind}


def _login(credentials: KubeCredentials) -> kopf.ConnectionInfo:
    token = credentials.bearer()
    return kopf.ConnectionInfo(
        server=credentials.server,
        ca_path=credentials.ca_path,
        insecure=not credentials.verify,
        scheme="Bearer" if token else None,
        token=token,
        certificate_path=credentials.cert_path,
        private_key_path=credentials.key_path,
    )


def _watch_child(registry: kopf.OperatorRegistry, controller: Controller, resource: tuple[str, ...]) -> None:
    group, version, plural, api_version, kind = resource

    @kopf.on.event(group, version, plural, labels=MANAGED, registry=registry)  # type: ignore[arg-type]
    async def child_event(event: dict[str, Any], **_: Any) -> None:
        body = _typed(event, api_version, kind)
        store = controller.store
        key = store.drop_child(body) if event.get("type") == "DELETED" else store.put_child(body)
        if key is not None:
            controller.queue.add(key)


def build_registry(
    controller: Controller,
    credentials: KubeCredentials,
    with_lws: bool = True,
    on_pod_change: Callable[[], None] = lambda: None,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    last_login: list[str | None] = []

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        if last_login:  # kopf logs in again after a 401: the token it had expired or was rotated
            await asyncio.to_thread(credentials.renew, last_login[-1])
        info = _login(credentials)
        last_login[:] = [info.token]
        return info

    @kopf.on.event(labels.GROUP, labels.VERSION, labels.PLURAL, registry=registry)  # type: ignore[arg-type]
    async def deployment_event(event: dict[str, Any], **_: Any) -> None:
        body = _typed(event, labels.API_VERSION, labels.KIND)
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event.get("type") == "DELETED":
            controller.store.drop_deployment(key, body["metadata"].get("resourceVersion"))
        else:
            # Our own status writes come back as events too: only a new spec goes before the rest.
            controller.queue.add(key, urgent=controller.store.put_deployment(body))

    for resource in CHILD_RESOURCES:
        if with_lws or resource[4] != "LeaderWorkerSet":
            _watch_child(registry, controller, resource)

    @kopf.on.event("", "v1", "pods", labels={labels.DEPLOYMENT: kopf.PRESENT}, registry=registry)  # type: ignore[arg-type]
    async def pod_event(event: dict[str, Any], **_: Any) -> None:
        store = controller.store
        body = event["object"]
        key = store.drop_pod(body) if event.get("type") == "DELETED" else store.put_pod(body)
        if key is not None:
            controller.queue.add(key)
        on_pod_change()  # the capacity reporter reports soon

    @kopf.index("", "v1", "nodes", registry=registry)
    async def gpu_node(body: kopf.Body, **_: Any) -> None:
        for key in controller.store.put_node(body["metadata"]["name"], node_gpus(body)):
            controller.queue.add(key)

    @kopf.on.event("", "v1", "nodes", registry=registry)  # type: ignore[arg-type]
    async def node_event(event: dict[str, Any], **_: Any) -> None:
        if event.get("type") == "DELETED":
            for key in controller.store.put_node(event["object"]["metadata"]["name"], None):
                controller.queue.add(key)

    return registry
