"""Capacity reporting: which engine pods are Ready, sent to the ledger's admin API over HTTP.

The operator does not import the ledger (SQLAlchemy stays out of `modelplex operator run`), so it
speaks the ledger's wire format: `PUT /admin/v1/capacity/observations` with every Ready engine pod
of the cluster, level-based. The ledger opens, extends and closes serving intervals from it (see
billing/capacity.py). Each report lists the pods afresh (one label-selected LIST), so it never depends
on what a watch has or has not delivered yet; a pod event only makes the next report come sooner.
A pod whose ModelDeployment the operator has not seen yet holds the whole report back: reporting
without it would close its interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import httpx

from modelplex.crds import labels
from modelplex.kube.client import KubeClient
from modelplex.kube.errors import ApiError
from modelplex.operator.gpus import NodeGpus
from modelplex.operator.podspec import GPU_PRODUCT_LABEL

log = logging.getLogger(__name__)
Manifest = dict[str, Any]
SOURCE = "kubernetes"
OBSERVATIONS_PATH = "/admin/v1/capacity/observations"
UNKNOWN_PRODUCT = "unknown"


class UnknownDeployment(Exception):
    """A Ready pod's ModelDeployment is not in the operator's view yet."""


def _condition(pod: Manifest, kind: str) -> Manifest:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def pod_gpus(pod: Manifest, resource: str) -> int:
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        limits = (container.get("resources") or {}).get("limits") or {}
        value = str(limits.get(resource, "0"))
        total += int(value) if value.isdigit() else 0
    return total


def gpu_product(pod: Manifest, nodes: dict[str, NodeGpus]) -> str:
    """What the pod asked for, else what its node is labelled with."""
    spec = pod.get("spec") or {}
    wanted = (spec.get("nodeSelector") or {}).get(GPU_PRODUCT_LABEL)
    if wanted:
        return str(wanted)
    node = nodes.get(str(spec.get("nodeName") or ""))
    return node.labels.get(GPU_PRODUCT_LABEL, UNKNOWN_PRODUCT) if node is not None else UNKNOWN_PRODUCT


def ready_replica(
    pod: Manifest, deployment: Callable[[tuple[str, str]], Manifest | None], nodes: dict[str, NodeGpus]
) -> Manifest | None:
    """The ledger's ReadyReplica (JSON) of a Ready engine pod; None when the pod is not Ready."""
    metadata = pod.get("metadata") or {}
    ready = _condition(pod, "Ready")
    owner = (metadata.get("labels") or {}).get(labels.DEPLOYMENT)
    if ready.get("status") != "True" or not owner or not ready.get("lastTransitionTime"):
        return None
    namespace = str(metadata.get("namespace", ""))
    md = deployment((namespace, owner))
    if md is None:
        raise UnknownDeployment(f"{namespace}/{owner}")
    spec = md.get("spec") or {}
    resources = spec.get("resources") or {}
    return {
        "namespace": namespace,
        "deployment": owner,
        "model": (spec.get("model") or {}).get("servedName") or owner,
        "replica": str(metadata.get("name", "")),
        "gpus": pod_gpus(pod, str(resources.get("gpuResourceName") or "nvidia.com/gpu")),
        "gpuProduct": gpu_product(pod, nodes),
        "readySince": ready["lastTransitionTime"],
    }


def observation(
    pods: Iterable[Manifest],
    deployment: Callable[[tuple[str, str]], Manifest | None],
    nodes: Iterable[NodeGpus],
) -> Manifest:
    """The report body: every Ready engine pod; raises UnknownDeployment (see the module docstring)."""
    by_name = {node.name: node for node in nodes}
    ready = [found for pod in pods if (found := ready_replica(pod, deployment, by_name)) is not None]
    ready.sort(key=lambda replica: (replica["namespace"], replica["replica"]))
    return {"source": SOURCE, "ready": ready}


class CapacityReporter:
    """Reports every `interval` seconds, and soon after a pod event (`poke`)."""

    def __init__(
        self,
        api: KubeClient,
        ledger_url: str,
        token: str | None,
        deployment: Callable[[tuple[str, str]], Manifest | None],
        nodes: Callable[[], Iterable[NodeGpus]],
        namespaces: tuple[str, ...] = (),
        interval: float = 30.0,
    ) -> None:
        self._api = api
        self._url = ledger_url.rstrip("/") + OBSERVATIONS_PATH
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._deployment = deployment
        self._nodes = nodes
        self._namespaces = namespaces
        self._interval = interval
        self._poked = asyncio.Event()

    def poke(self) -> None:
        self._poked.set()

    async def _pods(self) -> list[Manifest]:
        params = {"labelSelector": labels.DEPLOYMENT}
        paths = [f"/api/v1/namespaces/{ns}/pods" for ns in self._namespaces] or ["/api/v1/pods"]
        pods: list[Manifest] = []
        for path in paths:
            pods.extend((await self._api.get(path, params)).get("items") or [])
        return pods

    async def report_once(self, http: httpx.AsyncClient) -> bool:
        """One report; False (logged) when it could not be made or was refused."""
        try:
            body = observation(await self._pods(), self._deployment, self._nodes())
            response = await http.put(self._url, json=body, headers=self._headers)
        except UnknownDeployment as missing:
            log.info("Held capacity report back: ModelDeployment %s not seen yet", missing)
            return False
        except (ApiError, aiohttp.ClientError, httpx.HTTPError, TimeoutError) as error:
            log.warning("Failed capacity report error=%s", error)
            return False
        if response.status_code != 200:
            log.warning(
                "Ledger refused capacity report status=%d body=%s", response.status_code, response.text[:200]
            )
            return False
        log.debug("Reported capacity ready=%d result=%s", len(body["ready"]), response.text)
        return True

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:
            while True:
                self._poked.clear()
                await self.report_once(http)
                try:
                    await asyncio.wait_for(self._poked.wait(), timeout=self._interval)
                    await asyncio.sleep(1.0)  # gather a burst of pod events into one report
                except TimeoutError:
                    pass
