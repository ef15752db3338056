"""What should exist for a ModelDeployment (pure): the workload, its Service, PDB and cache claim.

One node per replica (tensor x pipeline <= gpusPerNode) is a Deployment; more is a LeaderWorkerSet
whose groups span the nodes a replica needs, running vLLM's own multi-node launcher.
"""

from __future__ import annotations

import math
from typing import Any

from modelplex.crds import labels
from modelplex.crds.resource import ModelDeployment
from modelplex.operator.fit import FitVerdict
from modelplex.operator.podspec import cache_claim_name, pod_template
from modelplex.operator.settings import OperatorSettings

Manifest = dict[str, Any]
LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"


def nodes_per_replica(md: ModelDeployment) -> int:
    return math.ceil(md.spec.parallelism.gpus / md.spec.resources.gpus_per_node)


def _metadata(md: ModelDeployment, name: str, component: str) -> Manifest:
    owner = {
        "apiVersion": md.api_version,
        "kind": md.kind,
        "name": md.metadata.name,
        "uid": md.metadata.uid,
        "controller": True,
    }
    return {
        "name": name,
        "namespace": md.metadata.namespace,
        "labels": labels.owner_labels(md.metadata.name) | {labels.COMPONENT: component},
        "ownerReferences": [owner],
    }


def deployment(md: ModelDeployment, settings: OperatorSettings) -> Manifest:
    selector = labels.serving_selector(md.metadata.name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(md, md.metadata.name, labels.COMPONENT_ENGINE),
        "spec": {
            "replicas": md.spec.replicas,
            "selector": {"matchLabels": selector},
            # GPUs are usually fully booked, so a rollout frees a replica's GPUs before replacing it.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "progressDeadlineSeconds": settings.startup_budget_seconds + 600,
            "template": pod_template(md, settings, nodes=1, leader=True),
        },
    }


def leader_worker_set(md: ModelDeployment, settings: OperatorSettings, nodes: int) -> Manifest:
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": "LeaderWorkerSet",
        "metadata": _metadata(md, md.metadata.name, labels.COMPONENT_ENGINE),
        "spec": {
            "replicas": md.spec.replicas,
            "startupPolicy": "LeaderCreated",
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxSurge": 0, "maxUnavailable": 1},
            },
            "leaderWorkerTemplate": {
                "size": nodes,
                # One dead process breaks the collective; the whole group restarts together.
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": pod_template(md, settings, nodes, leader=True),
                "workerTemplate": pod_template(md, settings, nodes, leader=False),
            },
        },
    }


def service(md: ModelDeployment) -> Manifest:
    metadata = _metadata(md, md.metadata.name, labels.COMPONENT_ENDPOINT)
    metadata["annotations"] = {labels.SERVED_NAME_ANNOTATION: md.served_name}
    port = {"name": labels.HTTP_PORT_NAME, "port": labels.HTTP_PORT, "targetPort": labels.HTTP_PORT_NAME}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": labels.serving_selector(md.metadata.name),
            "ports": [port | {"protocol": "TCP"}],
        },
    }


def disruption_budget(md: ModelDeployment) -> Manifest:
    selector = {labels.DEPLOYMENT: md.metadata.name, labels.COMPONENT: labels.COMPONENT_ENGINE}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(md, md.metadata.name, labels.COMPONENT_ENGINE),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }


def cache_claim(md: ModelDeployment) -> Manifest | None:
    cache = md.spec.cache
    if cache is None:
        return None
    spec: Manifest = {"accessModes": [cache.access_mode], "resources": {"requests": {"storage": cache.size}}}
    if cache.storage_class_name:
        spec["storageClassName"] = cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(md, cache_claim_name(md), labels.COMPONENT_CACHE),
        "spec": spec,
    }


def desired(md: ModelDeployment, settings: OperatorSettings, verdict: FitVerdict) -> list[Manifest]:
    """Every child that should exist, in creation order; no engine pods when the model cannot fit."""
    children = [c for c in (cache_claim(md), service(md)) if c is not None]
    if verdict.fits is False:
        return children
    nodes = nodes_per_replica(md)
    workload = deployment(md, settings) if nodes == 1 else leader_worker_set(md, settings, nodes)
    return [*children, workload, disruption_budget(md)]


def endpoint(md: ModelDeployment, settings: OperatorSettings) -> str:
    host = f"{md.metadata.name}.{md.metadata.namespace}.svc.{settings.cluster_domain}"
    return f"http://{host}:{labels.HTTP_PORT}/v1"
