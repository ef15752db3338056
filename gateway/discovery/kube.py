"""The Kubernetes discovery source: ModelDeployments and the EndpointSlices of their Services.

Why EndpointSlices rather than pods: the operator's Service already selects exactly the pods that
serve HTTP (single-node pods, multi-node leaders), and the EndpointSlice controller already decides
readiness the way every Kubernetes client does (readiness probe, and not ready once terminating, so
a pod in its preStop drain stops getting new requests). Slices are small, carry the pod IP and the
named port, and reading them needs no access to pods (whose specs hold environment and secrets
references). Level-based: every change rebuilds the whole catalog from the two watched collections,
after a short debounce, and publishes it when it differs from the last one.
"""

from __future__ import annotations

import asyncio
import logging

from modelplex.crds import labels
from modelplex.gateway.discovery.base import Catalog, Publish
from modelplex.gateway.discovery.kube_catalog import SLICE_SELECTOR, build_catalog
from modelplex.kube.client import KubeClient
from modelplex.kube.credentials import KubeCredentials
from modelplex.kube.resources import collection_path
from modelplex.kube.watch import WatchedCollection

log = logging.getLogger(__name__)


class KubernetesSource:
    """Publishes one model per ModelDeployment in `namespace` (every namespace when None)."""

    def __init__(
        self, credentials: KubeCredentials, namespace: str | None = None, debounce_seconds: float = 0.1
    ) -> None:
        self._credentials = credentials
        self._namespace = namespace
        self._debounce = debounce_seconds

    async def run(self, publish: Publish) -> None:
        client = KubeClient(self._credentials, connections=8)
        changed = asyncio.Event()
        deployments = WatchedCollection(
            client,
            collection_path(labels.API_VERSION, labels.KIND, self._namespace or None),
            changed.set,
        )
        slices = WatchedCollection(
            client,
            collection_path("discovery.k8s.io/v1", "EndpointSlice", self._namespace or None),
            changed.set,
            label_selector=SLICE_SELECTOR,
        )
        log.info("Started Kubernetes discovery namespace=%s", self._namespace or "*")
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(deployments.run())
                group.create_task(slices.run())
                group.create_task(self._publish_changes(publish, changed, deployments, slices))
        finally:
            await client.close()

    async def _publish_changes(
        self,
        publish: Publish,
        changed: asyncio.Event,
        deployments: WatchedCollection,
        slices: WatchedCollection,
    ) -> None:
        last: Catalog | None = None
        while True:
            await changed.wait()
            await asyncio.sleep(self._debounce)  # a rollout changes many objects at once
            changed.clear()
            if not (deployments.synced and slices.synced):
                continue  # a first catalog without endpoints would briefly make every model unservable
            built = build_catalog(deployments.objects.values(), slices.objects.values())
            if built.catalog == last:
                continue
            for problem in built.problems:
                log.warning("Adjusted discovered model problem=%s", problem)
            await publish(built.catalog)
            last = built.catalog
            _log_catalog(built.catalog)


def _log_catalog(catalog: Catalog) -> None:
    endpoints = [e for m in catalog.models for e in m.endpoints]
    log.info(
        "Published catalog models=%d endpoints=%d ready=%d",
        len(catalog.models),
        len(endpoints),
        sum(e.ready for e in endpoints),
    )
