"""Engine pod templates (pure): the vLLM container, its probes, volumes and placement."""

from __future__ import annotations

from typing import Any

from modelplex.crds import labels
from modelplex.crds.resource import ModelDeployment
from modelplex.engine.vllm_args import MultiNode, headless, vllm_args
from modelplex.operator.settings import OperatorSettings

MODELS_ROOT = "/models"
CACHE_ROOT = "/cache"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
LWS_WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
LWS_GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"
Manifest = dict[str, Any]


def cache_claim_name(md: ModelDeployment) -> str:
    return f"{md.metadata.name}-model-cache"


def _probe(period: int, failures: int, timeout: int) -> Manifest:
    return {
        "httpGet": {"path": "/health", "port": labels.HTTP_PORT_NAME},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def _probes(settings: OperatorSettings) -> Manifest:
    # Liveness and readiness only start counting once the startup probe passed, so a long model
    # download or load is bounded by the startup budget rather than killed by liveness.
    startup_period = 10
    return {
        "startupProbe": _probe(startup_period, max(1, settings.startup_budget_seconds // startup_period), 5),
        "readinessProbe": _probe(5, 3, 5),
        "livenessProbe": _probe(15, 4, 10),
    }


def _resources(md: ModelDeployment, gpus: int) -> Manifest:
    wanted = md.spec.resources
    limits: dict[str, str] = {wanted.gpu_resource_name: str(gpus)}
    requests: dict[str, str] = {}
    for name, value in (("cpu", wanted.cpu), ("memory", wanted.memory)):
        if value is not None:
            limits[name] = requests[name] = value
    return {"limits": limits, "requests": requests} if requests else {"limits": limits}


def _env(md: ModelDeployment, multi_node: bool) -> list[Manifest]:
    env: list[Manifest] = []
    if multi_node:
        env.append(
            {
                "name": "NODE_RANK",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{LWS_WORKER_INDEX_LABEL}']"}},
            }
        )
    if md.spec.cache is not None:
        env.append({"name": "HF_HOME", "value": f"{CACHE_ROOT}/huggingface"})
    env += [{"name": var.name, "value": var.value} for var in md.spec.engine.env]
    return env


def _mounts(md: ModelDeployment) -> list[Manifest]:
    mounts: list[Manifest] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if md.spec.model.source.startswith("pvc://"):
        mounts.append({"name": "model", "mountPath": MODELS_ROOT, "readOnly": True})
    if md.spec.cache is not None:
        mounts.append({"name": "cache", "mountPath": CACHE_ROOT})
    return mounts


def _volumes(md: ModelDeployment, settings: OperatorSettings) -> list[Manifest]:
    volumes: list[Manifest] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}}
    ]
    if md.spec.model.source.startswith("pvc://"):
        claim = md.spec.model.source.removeprefix("pvc://").split("/", 1)[0]
        volumes.append({"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
    if md.spec.cache is not None:
        volumes.append({"name": "cache", "persistentVolumeClaim": {"claimName": cache_claim_name(md)}})
    return volumes


def engine_args(md: ModelDeployment, settings: OperatorSettings, nodes: int, leader: bool) -> list[str]:
    multi_node = None
    if nodes > 1:
        # LWS injects the leader's address into every container; $(VAR) is expanded by the kubelet.
        multi_node = MultiNode(nodes, "$(NODE_RANK)", "$(LWS_LEADER_ADDRESS)", settings.multi_node_port)
    args = vllm_args(
        md.spec,
        served_name=md.served_name,
        port=labels.HTTP_PORT,
        mount_root=MODELS_ROOT,
        multi_node=multi_node,
    )
    return args if leader else headless(args)


def engine_container(md: ModelDeployment, settings: OperatorSettings, nodes: int, leader: bool) -> Manifest:
    gpus_per_pod = md.spec.parallelism.gpus // nodes
    container: Manifest = {
        "name": "engine",
        "image": md.spec.engine.image,
        "command": ["vllm", "serve"],
        "args": engine_args(md, settings, nodes, leader),
        "resources": _resources(md, gpus_per_pod),
        "volumeMounts": _mounts(md),
    }
    env = _env(md, nodes > 1)
    if env:
        container["env"] = env
    if md.spec.model.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": md.spec.model.credentials_secret}}]
    if leader:
        container["ports"] = [
            {"name": labels.HTTP_PORT_NAME, "containerPort": labels.HTTP_PORT, "protocol": "TCP"}
        ]
        container.update(_probes(settings))
        # A pause before SIGTERM lets endpoints drop the pod; vLLM then finishes in-flight requests.
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": settings.drain_seconds}}}
    return container


def pod_labels(md: ModelDeployment, leader: bool) -> dict[str, str]:
    pod = labels.owner_labels(md.metadata.name) | {labels.COMPONENT: labels.COMPONENT_ENGINE}
    pod[labels.ROLE] = labels.ROLE_LEADER if leader else labels.ROLE_WORKER
    if leader:
        pod[labels.SERVING] = "true"
    return pod


def pod_template(md: ModelDeployment, settings: OperatorSettings, nodes: int, leader: bool) -> Manifest:
    wanted = md.spec.resources
    node_selector = dict(wanted.node_selector)
    if wanted.gpu_product:
        node_selector[GPU_PRODUCT_LABEL] = wanted.gpu_product
    spec: Manifest = {
        "containers": [engine_container(md, settings, nodes, leader)],
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "enableServiceLinks": False,
        "volumes": _volumes(md, settings),
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    if wanted.tolerations:
        spec["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in wanted.tolerations]
    return {"metadata": {"labels": pod_labels(md, leader)}, "spec": spec}
