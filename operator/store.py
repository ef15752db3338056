"""The operator's view of the cluster, fed by watch events: ModelDeployments, their children, pods,
and the GPU nodes (gpus.NodeGpus: name, labels, allocatable extended resources; for the fit check).

Bodies are kept without managedFields (most of an object's size) and as compact JSON, decoded when a
reconcile reads them: as Python objects they take about eight times the space, which at a thousand
ModelDeployments is tens of megabytes. Pods are kept only as PodState.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from modelplex.crds import labels
from modelplex.operator.gpus import NodeGpus, Placement, body_placement
from modelplex.operator.plan import ChildKey
from modelplex.operator.status import PodState
from modelplex.operator.versions import Versions, resource_version

Manifest = dict[str, Any]
Key = tuple[str, str]  # (namespace, ModelDeployment name)
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")


def trimmed(body: Manifest) -> Manifest:
    metadata = dict(body.get("metadata", {}))
    metadata.pop("managedFields", None)
    annotations = metadata.get("annotations")
    if annotations and any(a in annotations for a in _DROPPED_ANNOTATIONS):
        metadata["annotations"] = {k: v for k, v in annotations.items() if k not in _DROPPED_ANNOTATIONS}
    return {**body, "metadata": metadata}


def _packed(body: Manifest) -> bytes:
    return json.dumps(trimmed(body), separators=(",", ":")).encode()


def owner_key(body: Manifest) -> Key | None:
    metadata = body.get("metadata", {})
    owner = (metadata.get("labels") or {}).get(labels.DEPLOYMENT)
    return (metadata.get("namespace", ""), owner) if owner else None


def pod_state(body: Manifest) -> PodState:
    status = body.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled", {})
    unschedulable = None
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        unschedulable = scheduled.get("message") or "unschedulable"
    waiting = next(
        (
            s["state"]["waiting"].get("reason")
            for s in status.get("containerStatuses") or []
            if (s.get("state") or {}).get("waiting")
        ),
        None,
    )
    return PodState(
        name=body["metadata"]["name"],
        phase=status.get("phase", "Pending"),
        # A terminating pod may stay Ready through its grace period; it is on its way out.
        ready=conditions.get("Ready", {}).get("status") == "True"
        and not body["metadata"].get("deletionTimestamp"),
        unschedulable=unschedulable,
        waiting=waiting,
        ip=status.get("podIP"),
        serving=(body["metadata"].get("labels") or {}).get(labels.SERVING) == "true",
    )


class Store:
    def __init__(self) -> None:
        self._deployments: dict[Key, bytes] = {}
        self._generations: dict[Key, int] = {}
        self._deployment_versions: Versions[Key] = Versions()
        self._children: dict[Key, dict[ChildKey, bytes]] = defaultdict(dict)
        self._child_versions: Versions[tuple[Key, ChildKey]] = Versions()
        self._pods: dict[Key, dict[str, PodState]] = defaultdict(dict)
        self._nodes: dict[str, NodeGpus] = {}
        self._node_view: tuple[NodeGpus, ...] = ()
        # ModelDeployments whose verdict reads the nodes (no resources.gpuMemory), and which nodes.
        self._node_readers: dict[Key, Placement] = {}

    def deployment_keys(self) -> list[Key]:
        return list(self._deployments)

    def deployments(self) -> list[Manifest]:
        """Every ModelDeployment held, unpacked."""
        return [body for key in list(self._deployments) if (body := self.deployment(key)) is not None]

    def deployment(self, key: Key) -> Manifest | None:
        packed = self._deployments.get(key)
        if packed is None:
            return None
        body: Manifest = json.loads(packed)
        return body

    def put_deployment(self, body: Manifest) -> bool:
        """Keeps `body` unless a newer copy is held; True when the ModelDeployment is new or its spec
        changed (a new generation)."""
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if not self._deployment_versions.admit(key, resource_version(body)):
            return False
        generation = int(body["metadata"].get("generation") or 0)
        previous = self._generations.get(key)
        self._generations[key] = generation
        self._deployments[key] = _packed(body)
        if (reads := body_placement(body)) is not None:
            self._node_readers[key] = reads
        else:
            self._node_readers.pop(key, None)
        return previous != generation

    def drop_deployment(self, key: Key, version: str | None = None) -> None:
        """Forgets the ModelDeployment deleted at resourceVersion `version`."""
        self._deployment_versions.delete(key, version)
        self._deployments.pop(key, None)
        self._generations.pop(key, None)
        self._node_readers.pop(key, None)

    def put_node(self, name: str, node: NodeGpus | None) -> list[Key]:
        """Keeps `node` (None: it offers no GPUs, or is gone); the ModelDeployments it may matter to
        when it changed what the fit check reads, else none (a status heartbeat changes nothing)."""
        previous = self._nodes.get(name)
        if node == previous:
            return []
        if node is None:
            del self._nodes[name]
        else:
            self._nodes[name] = node
        self._node_view = tuple(self._nodes.values())
        touched = [n for n in (previous, node) if n is not None]
        return [key for key, reads in self._node_readers.items() if any(reads.admits(n) for n in touched)]

    def gpu_nodes(self) -> tuple[NodeGpus, ...]:
        return self._node_view

    def put_child(self, body: Manifest) -> Key | None:
        """Keeps `body` unless a newer copy is held (or was deleted); its owner's key either way."""
        key = owner_key(body)
        if key is not None:
            child = (body["kind"], body["metadata"]["name"])
            if self._child_versions.admit((key, child), resource_version(body)):
                self._children[key][child] = _packed(body)
        return key

    def drop_child(self, body: Manifest) -> Key | None:
        key = owner_key(body)
        if key is not None:
            child = (body["kind"], body["metadata"]["name"])
            self._child_versions.delete((key, child), resource_version(body))
            self._remove_child(key, child)
        return key

    def forget_child(self, key: Key, child: ChildKey) -> None:
        """Forgets a child the operator deleted itself."""
        self._child_versions.forget((key, child))
        self._remove_child(key, child)

    def _remove_child(self, key: Key, child: ChildKey) -> None:
        if key in self._children:
            self._children[key].pop(child, None)
            if not self._children[key]:
                del self._children[key]

    def put_pod(self, body: Manifest) -> Key | None:
        key = owner_key(body)
        if key is not None:
            self._pods[key][body["metadata"]["name"]] = pod_state(body)
        return key

    def drop_pod(self, body: Manifest) -> Key | None:
        key = owner_key(body)
        if key is not None and key in self._pods:
            self._pods[key].pop(body["metadata"]["name"], None)
            if not self._pods[key]:
                del self._pods[key]
        return key

    def children_of(self, key: Key) -> dict[ChildKey, Manifest]:
        return {child: json.loads(packed) for child, packed in self._children.get(key, {}).items()}

    def workload_of(self, key: Key) -> Manifest | None:
        """The Deployment or LeaderWorkerSet that runs the replicas, decoded alone."""
        children = self._children.get(key, {})
        packed = next((body for (kind, _), body in children.items() if kind in WORKLOAD_KINDS), None)
        return json.loads(packed) if packed is not None else None

    def pods_of(self, key: Key) -> tuple[PodState, ...]:
        return tuple(self._pods.get(key, {}).values())
