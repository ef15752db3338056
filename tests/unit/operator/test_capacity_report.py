"""The operator's capacity report: serving engine pods as the ledger's observation body (pure), and
where the reporter finds a pod's ModelDeployment (the store, else one LIST for the report)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import httpx

from modelplex.billing.capacity import Observation
from modelplex.crds import labels
from modelplex.kube.client import KubeClient
from modelplex.operator.autoscaler.policy import Decision, Signals
from modelplex.operator.autoscaler.record import ModelRecord, scaling_report
from modelplex.operator.capacity import (
    CapacityReporter,
    declared_prices,
    observation,
    wanted_deployments,
)
from modelplex.operator.gpus import NodeGpus
from modelplex.operator.podspec import GPU_PRODUCT_LABEL, LWS_GROUP_INDEX_LABEL

MD: dict[str, Any] = {
    "metadata": {"namespace": "prod", "name": "llama"},
    "spec": {"model": {"servedName": "llama-8b"}, "resources": {"gpuResourceName": "nvidia.com/gpu"}},
}
SINCE = "2026-05-04T08:00:00Z"
DELETED_AT = "2026-05-04T09:00:00Z"


def pod(
    name: str,
    ready: str = "True",
    product: str | None = None,
    node: str = "n1",
    owner: str = "llama",
    deleting: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [{"resources": {"limits": {"nvidia.com/gpu": "2", "cpu": "4"}}}],
    }
    if product:
        spec["nodeSelector"] = {GPU_PRODUCT_LABEL: product}
    metadata: dict[str, Any] = {"name": name, "namespace": "prod", "labels": {labels.DEPLOYMENT: owner}}
    if deleting:
        metadata["deletionTimestamp"] = DELETED_AT
    return {
        "metadata": metadata,
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": SINCE}]},
    }


def test_only_ready_pods_are_reported_with_gpus_and_product() -> None:
    nodes = [NodeGpus(name="n1", labels={GPU_PRODUCT_LABEL: "NVIDIA-L4"}, allocatable=())]
    pods = [
        pod("b", product="NVIDIA-H100-80GB-HBM3"),
        pod("a"),
        pod("c", ready="False"),
        pod("d", node="gone"),
    ]
    body = observation(pods, {("prod", "llama"): MD}, nodes)
    assert body["source"] == "kubernetes"
    assert [(r["replica"], r["gpus"], r["gpuProduct"]) for r in body["ready"]] == [
        ("a", 2, "NVIDIA-L4"),
        ("b", 2, "NVIDIA-H100-80GB-HBM3"),
        ("d", 2, "unknown"),
    ]
    assert {(r["model"], r["deployment"], r["readySince"]) for r in body["ready"]} == {
        ("llama-8b", "llama", SINCE)
    }


def test_terminating_pods_and_pods_of_gone_or_deleting_deployments_do_not_serve() -> None:
    deleting_md = {**MD, "metadata": {**MD["metadata"], "deletionTimestamp": DELETED_AT}}
    pods = [pod("a"), pod("b", deleting=True), pod("c", owner="gone")]
    assert [r["replica"] for r in observation(pods, {("prod", "llama"): MD}, [])["ready"]] == ["a"]
    assert observation(pods, {("prod", "llama"): deleting_md}, [])["ready"] == []
    # only a Ready pod that is not terminating needs its ModelDeployment looked up
    assert wanted_deployments([*pods, pod("d", ready="False", owner="other")]) == {
        ("prod", "llama"),
        ("prod", "gone"),
    }


class FakeApi:
    """The two LISTs a report makes; counts the ModelDeployment LISTs."""

    def __init__(self, pods: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.deployments = deployments
        self.deployment_lists = 0

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        if path.endswith("/pods"):
            assert params == {"labelSelector": labels.DEPLOYMENT}
            return {"items": self.pods}
        assert path == f"/apis/{labels.API_VERSION}/{labels.PLURAL}"
        self.deployment_lists += 1
        return {"items": self.deployments}


def _report(api: FakeApi, store: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def ledger(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer admin"
        sent.append(httpx.Response(200, content=request.content).json())
        return httpx.Response(200, json={"opened": 0, "closed": 0, "open": 0})

    reporter = CapacityReporter(cast(KubeClient, api), "http://ledger/", "admin", store.get, lambda: ())

    async def once() -> bool:
        async with httpx.AsyncClient(transport=httpx.MockTransport(ledger)) as http:
            return await reporter.report_once(http)

    assert asyncio.run(once())
    return [replica for body in sent for replica in body["ready"]]


def test_a_deployment_the_store_has_not_seen_yet_is_listed_instead_of_holding_the_report_back() -> None:
    api = FakeApi([pod("a"), pod("b", owner="gone")], [MD])
    assert [r["replica"] for r in _report(api, {})] == ["a"]
    assert api.deployment_lists == 1


def test_the_store_answers_without_a_list_when_it_holds_every_deployment() -> None:
    api = FakeApi([pod("a"), pod("b", deleting=True, owner="gone")], [])
    assert [r["replica"] for r in _report(api, {("prod", "llama"): MD})] == ["a"]
    assert api.deployment_lists == 0


def test_the_autoscalers_decisions_and_last_reading_travel_as_the_ledger_reads_them() -> None:
    record = ModelRecord()
    assert scaling_report("prod", "llama", record) is None  # nothing read yet
    busy = Signals(waiting=12, running=8, kv_cache=0.8125, gateway_queued=3)
    up = Decision(replicas=3, reason="QueueDepth", message="queue depth 23 over 1 x 8")
    record.read(up, busy, "llama-8b", "2026-05-04T08:01:00Z")
    record.scaled(up, 1, busy, "2026-05-04T08:01:00Z")
    calm = Signals(waiting=0, running=2, kv_cache=None)
    record.read(Decision(replicas=3, reason="QueueDepth", message="steady"), calm, "llama-8b", SINCE)
    body = observation([], {}, [], [report for report in [scaling_report("prod", "llama", record)] if report])
    (sent,) = Observation.model_validate(body).scaling
    assert (sent.model, sent.desired_replicas, sent.observed_at) == (
        "llama-8b",
        3,
        datetime(2026, 5, 4, 8, tzinfo=UTC),
    )
    assert sent.signals is not None
    assert (sent.signals.waiting, sent.signals.gateway_queued, sent.signals.kv_cache_utilization) == (
        0,
        0,
        None,
    )
    (decided,) = sent.decisions
    assert (decided.from_replicas, decided.to, decided.reason) == (1, 3, "QueueDepth")
    assert decided.signals is not None
    assert (decided.signals.demand, decided.signals.kv_cache_utilization) == (23, 0.812)
    # a reading that could not be made carries no signals: they are never taken as zero
    record.read(
        Decision(replicas=3, reason="MetricsUnavailable", message="", able=False), calm, "llama-8b", SINCE
    )
    unread = scaling_report("prod", "llama", record)
    assert unread is not None
    assert unread["signals"] is None


def _priced(namespace: str, name: str, output: str, served: str | None = "llama-8b") -> dict[str, Any]:
    pricing = {"inputPer1M": "0.20", "outputPer1M": output}
    model = {"servedName": served} if served else {}
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {"model": model, "pricing": pricing}}


def test_declared_prices_are_one_per_served_model_and_valid_for_the_ledger() -> None:
    """Each ModelDeployment's spec.pricing, for the model it serves; of two that price the same model
    differently the first by namespace/name counts (else each report would swap the price back)."""
    deleting = _priced("prod", "gone", "9")
    deleting["metadata"]["deletionTimestamp"] = DELETED_AT
    unnamed = _priced("prod", "mistral", "0.30", served=None)
    priced = [_priced("staging", "llama", "0.99"), _priced("prod", "llama", "0.60"), MD, deleting, unnamed]
    prices = declared_prices(priced)
    assert [(p["model"], p["source"], p["pricing"]["outputPer1M"]) for p in prices] == [
        ("llama-8b", "ModelDeployment prod/llama", "0.60"),
        ("mistral", "ModelDeployment prod/mistral", "0.30"),
    ]
    body = observation([], {}, [], prices=prices)
    parsed = Observation.model_validate(body)
    assert [(p.model, p.pricing.output_per_1m) for p in parsed.prices] == [
        ("llama-8b", "0.60"),
        ("mistral", "0.30"),
    ]


def _member(name: str, group: str, role: str, deleting: bool = False) -> dict[str, Any]:
    member = pod(name, deleting=deleting)
    member["metadata"]["labels"] |= {labels.ROLE: role, LWS_GROUP_INDEX_LABEL: group}
    return member


def test_a_multi_node_group_is_one_replica_with_the_gpus_of_all_its_pods() -> None:
    # No request is ever metered on a worker pod: reported alone, its GPU time would all be idle.
    pods = [
        _member("llama-0", "0", labels.ROLE_LEADER),
        _member("llama-0-1", "0", labels.ROLE_WORKER),
        _member("llama-0-2", "0", labels.ROLE_WORKER, deleting=True),  # being replaced: not counted
        _member("llama-1", "1", labels.ROLE_LEADER),
        _member("llama-1-1", "1", labels.ROLE_WORKER),
        _member("llama-1-2", "1", labels.ROLE_WORKER),
        _member("llama-2-1", "2", labels.ROLE_WORKER),  # its leader is not Ready: the group does not serve
        {**_member("llama-2", "2", labels.ROLE_LEADER), "status": {"conditions": []}},
    ]
    body = observation(pods, {("prod", "llama"): MD}, [])
    assert [(r["replica"], r["gpus"]) for r in body["ready"]] == [("llama-0", 4), ("llama-1", 6)]
    Observation.model_validate(body)  # as the ledger reads it
