"""Capacity reporting: which engine pods are serving, sent to the ledger's admin API over HTTP.

The operator does not import the ledger (SQLAlchemy stays out of `modelplex operator run`), so it
speaks the ledger's wire format: `PUT /admin/v1/capacity/observations` with every serving engine pod
of the cluster, level-based, and, when the autoscaler runs, its last decisions and reading of each
ModelDeployment it scales (the decisions status.scaling shows; the ledger keeps each once). The
ledger opens, extends and closes serving intervals from it (see billing/capacity.py). Each report
lists the pods afresh (one label-selected LIST), so it never depends on what a watch has or has not
delivered yet; a pod event only makes the next report come sooner.

A pod serves while it is Ready, is not being deleted (a terminating pod may stay Ready for its whole
grace period) and its ModelDeployment exists and is not being deleted. The ModelDeployment comes from
the watch's store; one the store does not hold (just after a start, before the watch has delivered
it) is looked up in a LIST of ModelDeployments made for that report, so a report is never held back
and never leaves out a pod that serves. Absent from that LIST too, the ModelDeployment is gone.

A multi-node replica (a LeaderWorkerSet group) is one replica of the ledger: its leader, the pod the
gateway sends requests to and meters usage on, is reported with the GPUs of its whole group (its own
and its workers'), and the worker pods are not reported on their own, or their GPU time would be
idle time (no request is ever metered on a worker).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiohttp
import httpx

from modelplex.crds import labels
from modelplex.kube.client import KubeClient
from modelplex.kube.errors import ApiError
from modelplex.operator.gpus import NodeGpus
from modelplex.operator.podspec import GPU_PRODUCT_LABEL, LWS_GROUP_INDEX_LABEL

log = logging.getLogger(__name__)
Manifest = dict[str, Any]
Key = tuple[str, str]  # (namespace, ModelDeployment name)
SOURCE = "kubernetes"
OBSERVATIONS_PATH = "/admin/v1/capacity/observations"
UNKNOWN_PRODUCT = "unknown"
Group = tuple[str, str, str]  # (namespace, ModelDeployment name, group index)


def _condition(pod: Manifest, kind: str) -> Manifest:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def _deleting(body: Manifest) -> bool:
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def ready_since(pod: Manifest) -> str | None:
    """When the pod became Ready, while it is Ready and not being deleted; else None."""
    ready = _condition(pod, "Ready")
    if ready.get("status") != "True" or _deleting(pod):
        return None
    since = ready.get("lastTransitionTime")
    return str(since) if since else None


def _labels(pod: Manifest) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def owner(pod: Manifest) -> Key | None:
    name = _labels(pod).get(labels.DEPLOYMENT)
    return (str((pod.get("metadata") or {}).get("namespace", "")), str(name)) if name else None


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


def _group(pod: Manifest, key: Key) -> Group | None:
    index = _labels(pod).get(LWS_GROUP_INDEX_LABEL)
    return None if index is None else (*key, str(index))


def group_workers(pods: Iterable[Manifest]) -> dict[Group, list[Manifest]]:
    """The worker pods (not being deleted) of each multi-node group."""
    workers: dict[Group, list[Manifest]] = {}
    for pod in pods:
        key = owner(pod)
        if key is None or _deleting(pod) or _labels(pod).get(labels.ROLE) != labels.ROLE_WORKER:
            continue
        if (group := _group(pod, key)) is not None:
            workers.setdefault(group, []).append(pod)
    return workers


def ready_replica(
    pod: Manifest,
    deployments: Mapping[Key, Manifest],
    nodes: dict[str, NodeGpus],
    workers: Mapping[Group, list[Manifest]] | None = None,
) -> Manifest | None:
    """The ledger's ReadyReplica (JSON) of a serving engine pod (a group's leader with its `workers`'
    GPUs too); None when the pod does not serve, or is a group's worker."""
    since, key = ready_since(pod), owner(pod)
    md = deployments.get(key) if since is not None and key is not None else None
    if md is None or since is None or key is None or _deleting(md):
        return None
    if _labels(pod).get(labels.ROLE) == labels.ROLE_WORKER:
        return None
    spec = md.get("spec") or {}
    resource = str((spec.get("resources") or {}).get("gpuResourceName") or "nvidia.com/gpu")
    group = _group(pod, key)
    members = [pod, *((workers or {}).get(group, []) if group is not None else [])]
    return {
        "namespace": key[0],
        "deployment": key[1],
        "model": (spec.get("model") or {}).get("servedName") or key[1],
        "replica": str((pod.get("metadata") or {}).get("name", "")),
        "gpus": sum(pod_gpus(member, resource) for member in members),
        "gpuProduct": gpu_product(pod, nodes),
        "readySince": since,
    }


def wanted_deployments(pods: Iterable[Manifest]) -> set[Key]:
    """The ModelDeployments a report needs: those of the Ready pods that are not being deleted."""
    return {key for pod in pods if ready_since(pod) is not None and (key := owner(pod)) is not None}


def declared_prices(deployments: Iterable[Manifest]) -> list[Manifest]:
    """The ledger's DeclaredPrice (JSON) of every ModelDeployment with `spec.pricing`, one per served
    model: when two declare the same model, the first by namespace/name is the one (and a warning says
    so), or each report would record the other's price again."""
    chosen: dict[str, Manifest] = {}
    for md in sorted(deployments, key=_key):
        spec = md.get("spec") or {}
        pricing = spec.get("pricing")
        if not pricing or _deleting(md):
            continue
        namespace, name = _key(md)
        model = (spec.get("model") or {}).get("servedName") or name
        declared = {"model": model, "source": f"ModelDeployment {namespace}/{name}", "pricing": pricing}
        first = chosen.setdefault(model, declared)
        if first is not declared and first["pricing"] != pricing:
            log.warning(
                "Ignored conflicting pricing model=%s kept=%s ignored=%s",
                model,
                first["source"],
                declared["source"],
            )
    return list(chosen.values())


def observation(
    pods: Iterable[Manifest],
    deployments: Mapping[Key, Manifest],
    nodes: Iterable[NodeGpus],
    scaling: Iterable[Manifest] = (),
    prices: Iterable[Manifest] = (),
) -> Manifest:
    """The report body: every serving engine pod (`deployments`: the ModelDeployments that exist),
    what the autoscaler holds of each ModelDeployment it scales (`scaling`: its ScalingReports) and
    the prices ModelDeployments declare (`prices`: `declared_prices`)."""
    by_name = {node.name: node for node in nodes}
    pods = list(pods)
    workers = group_workers(pods)
    ready = [
        found for pod in pods if (found := ready_replica(pod, deployments, by_name, workers)) is not None
    ]
    ready.sort(key=lambda replica: (replica["namespace"], replica["replica"]))
    reports = sorted(scaling, key=lambda report: (report["namespace"], report["deployment"]))
    return {"source": SOURCE, "ready": ready, "scaling": reports, "prices": list(prices)}


class CapacityReporter:
    """Reports every `interval` seconds, and soon after a pod event (`poke`)."""

    def __init__(
        self,
        api: KubeClient,
        ledger_url: str,
        token: str | None,
        deployment: Callable[[Key], Manifest | None],
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
        # the autoscaler's decisions and last readings (set by the runner when it scales)
        self.scaling: Callable[[], Iterable[Manifest]] = list
        # every ModelDeployment the operator holds, for their declared prices (set by the runner)
        self.every_deployment: Callable[[], Iterable[Manifest]] = list

    def poke(self) -> None:
        self._poked.set()

    async def _list(self, api: str, plural: str, params: dict[str, str] | None = None) -> list[Manifest]:
        """Every `plural` under the API path `api` ("/api/v1") in the namespaces the operator watches."""
        paths = [f"{api}/namespaces/{ns}/{plural}" for ns in self._namespaces] or [f"{api}/{plural}"]
        items: list[Manifest] = []
        for path in paths:
            items.extend((await self._api.get(path, params)).get("items") or [])
        return items

    async def _deployments(self, pods: list[Manifest]) -> dict[Key, Manifest]:
        """The ModelDeployments of the Ready pods that exist: from the store, else from one LIST."""
        wanted = wanted_deployments(pods)
        found = {key: md for key in wanted if (md := self._deployment(key)) is not None}
        if wanted - found.keys():
            listed = await self._list(f"/apis/{labels.API_VERSION}", labels.PLURAL)
            found |= {key: md for md in listed if (key := _key(md)) in wanted and key not in found}
            if gone := sorted(wanted - found.keys()):
                log.debug("Left out Ready pods of deleted ModelDeployments %s", gone)
        return found

    async def report_once(self, http: httpx.AsyncClient) -> bool:
        """One report; False (logged) when it could not be made or was refused."""
        try:
            pods = await self._list("/api/v1", "pods", {"labelSelector": labels.DEPLOYMENT})
            prices = declared_prices(self.every_deployment())
            body = observation(pods, await self._deployments(pods), self._nodes(), self.scaling(), prices)
            response = await http.put(self._url, json=body, headers=self._headers)
        except (ApiError, aiohttp.ClientError, httpx.HTTPError, TimeoutError) as error:
            log.warning("Failed capacity report error=%s", error)
            return False
        if response.status_code != 200:
            log.warning(
                "Ledger refused capacity report status=%d body=%s", response.status_code, response.text[:200]
            )
            return False
        log.debug(
            "Reported capacity ready=%d scaling=%d result=%s",
            len(body["ready"]),
            len(body["scaling"]),
            response.text,
        )
        return True

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:
            while True:
                self._poked.clear()
                try:
                    await self.report_once(http)
                except Exception:  # a bug must not end reporting for the operator's lifetime
                    log.exception("Failed capacity report")
                try:
                    await asyncio.wait_for(self._poked.wait(), timeout=self._interval)
                    await asyncio.sleep(1.0)  # gather a burst of pod events into one report
                except TimeoutError:
                    pass


def _key(md: Manifest) -> Key:
    metadata = md.get("metadata") or {}
    return (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
