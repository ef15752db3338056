"""The operator records replica serving intervals in a real ledger (`modelplex ledger serve` over
HTTP) from the readiness of kwok's pods on the real control plane: opened when pods turn Ready, the
same observation sent again adds nothing, an interval whose pod went while the operator was away is
closed by the restarted operator from what it observes (and the others go on, not duplicated), and
intervals close when a replica is scaled away and when the ModelDeployment is deleted."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from modelplex.processes import free_port
from mpxtest.ledger import ADMIN_TOKEN, PEPPER
from mpxtest.metricsproxy import MetricsProxy, engine_page
from mpxtest.operatorproc import FAST_AUTOSCALER, MODELPLEX, Kit, OperatorProcess, running_operator
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster
Row = dict[str, Any]
MD = "metered"


@pytest.fixture(scope="module")
def ledger_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`modelplex ledger serve` on SQLite, on a free loopback port."""
    state = tmp_path_factory.mktemp("ledger")
    port = free_port()
    env = {
        **os.environ,
        "MODELPLEX_DATABASE_URL": f"sqlite:///{state / 'ledger.db'}",
        "MODELPLEX_BILLING_STATE_DIR": str(state),
        "MODELPLEX_BILLING_KEY_PEPPER": PEPPER,
        "MODELPLEX_BILLING_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    with (state / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [MODELPLEX, "ledger", "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _reachable(url), timeout=60, what="the ledger's admin API to answer")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _reachable(url: str) -> bool:
    try:
        return httpx.get(f"{url}/admin/v1/gpu-costs", headers=_auth(), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def reporting_operator(
    operator_kubeconfig: Path,
    ledger_api: str,
    metrics_proxy: MetricsProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator reporting to the ledger, with a fast autoscaler that scrapes kwok's pods through
    `metrics_proxy` (the ledger is on loopback, which the proxy is not asked for)."""
    env = {
        **FAST_AUTOSCALER,
        "HTTP_PROXY": metrics_proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "MODELPLEX_OPERATOR_LEDGER_URL": ledger_api,
        "MODELPLEX_OPERATOR_LEDGER_ADMIN_TOKEN": ADMIN_TOKEN,
        "MODELPLEX_OPERATOR_CAPACITY_REPORT_SECONDS": "2",
    }
    with running_operator(operator_kubeconfig, tmp_path_factory, env) as process:
        yield process


def all_intervals(ledger_api: str) -> list[Row]:
    reply = httpx.get(f"{ledger_api}/admin/v1/capacity/intervals", headers=_auth(), timeout=10)
    assert reply.status_code == 200, reply.text
    rows: list[Row] = reply.json()["data"]
    return rows


def intervals(ledger_api: str, namespace: str) -> dict[str, Row]:
    """This test's intervals by replica (each replica has one: a pod's name is never reused)."""
    rows = [row for row in all_intervals(ledger_api) if row["namespace"] == namespace]
    by_replica = {row["replica"]: row for row in rows}
    assert len(by_replica) == len(rows), rows
    return by_replica


def open_replicas(ledger_api: str, namespace: str) -> set[str]:
    return {name for name, row in intervals(ledger_api, namespace).items() if row["endedAt"] is None}


def _ready(pod: client.V1Pod) -> bool:
    conditions = [] if pod.status is None else pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def serving_pods(kit: Kit, namespace: str) -> set[str]:
    """Running engine pods that are Ready and not being deleted."""
    return {str(pod.metadata.name) for pod in kit.running_pods(namespace) if pod.metadata and _ready(pod)}


def resend(ledger_api: str) -> Row:
    """The observation that matches every open interval, as the operator sends it, sent again."""
    ready = [
        {key: row[key] for key in ("namespace", "deployment", "model", "replica", "gpus", "gpuProduct")}
        | {"readySince": row["startedAt"]}
        for row in all_intervals(ledger_api)
        if row["endedAt"] is None and row["source"] == "kubernetes"
    ]
    reply = httpx.put(
        f"{ledger_api}/admin/v1/capacity/observations",
        json={"source": "kubernetes", "ready": ready},
        headers=_auth(),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    result: Row = reply.json()
    return result


def prices(ledger_api: str, model: str) -> list[Row]:
    reply = httpx.get(f"{ledger_api}/admin/v1/prices", params={"model": model}, headers=_auth(), timeout=10)
    if reply.status_code == 404:
        return []
    assert reply.status_code == 200, reply.text
    rows: list[Row] = reply.json()["data"]
    return rows


def test_pod_readiness_becomes_serving_intervals(
    kit: Kit, reporting_operator: OperatorProcess, ledger_api: str, namespace: str
) -> None:
    kit.wait_free_gpus(2)
    md = {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": MD},
        "spec": {
            "model": {"source": "hf://org/model", "servedName": "metered-8b"},
            "replicas": 2,
            "pricing": {"inputPer1M": "0.15", "outputPer1M": "0.60"},
        },
    }
    kit.create(md, namespace)
    kit.wait_condition(namespace, MD, "True", "AllReplicasReady")
    pods = eventually(lambda: p if len(p := serving_pods(kit, namespace)) == 2 else None, what="two pods")
    eventually(lambda: open_replicas(ledger_api, namespace) == pods, what="an open interval per Ready pod")
    serving = intervals(ledger_api, namespace)
    for name, row in serving.items():
        spec = kit.core.read_namespaced_pod(name, namespace).spec
        assert spec is not None
        assert spec.node_name is not None
        node = kit.core.read_node(spec.node_name)
        assert node.metadata is not None
        assert (row["model"], row["deployment"], row["source"]) == ("metered-8b", MD, "kubernetes")
        assert row["gpus"] == 1
        assert row["gpuProduct"] == (node.metadata.labels or {}).get("nvidia.com/gpu.product", "unknown")

    # the declared price is in the ledger's price history, once, and a changed one is added
    declared = ("0.6", f"ModelDeployment {namespace}/{MD}")
    eventually(
        lambda: [(p["outputPer1M"], p["source"]) for p in prices(ledger_api, "metered-8b")] == [declared],
        what="the declared price in the ledger",
    )
    kit.custom.patch_namespaced_custom_object(
        "modelplex.dev",
        "v1alpha1",
        namespace,
        "modeldeployments",
        MD,
        {"spec": {"pricing": {"outputPer1M": "0.70"}}},
    )
    eventually(
        lambda: [p["outputPer1M"] for p in prices(ledger_api, "metered-8b")] == ["0.6", "0.7"],
        what="the changed price in the ledger",
    )

    # reporting is idempotent: the same observation again opens and closes nothing
    result = resend(ledger_api)
    assert (result["opened"], result["closed"], result["stale"]) == (0, 0, False)
    assert intervals(ledger_api, namespace).keys() == serving.keys()

    # the operator dies; meanwhile one replica's pod is deleted and the ReplicaSet replaces it
    reporting_operator.kill()
    gone, kept = sorted(pods)
    kit.core.delete_namespaced_pod(gone, namespace)
    replaced = eventually(
        lambda: p if len(p := serving_pods(kit, namespace) - pods) == 1 else None, what="a replacement pod"
    )
    last_seen = intervals(ledger_api, namespace)[kept]["lastSeenAt"]
    reporting_operator.start()

    def restarted_report() -> dict[str, Row] | None:
        rows = intervals(ledger_api, namespace)
        reported = rows[kept]["lastSeenAt"] > last_seen and rows.keys() == {gone, kept} | replaced
        return rows if reported and open_replicas(ledger_api, namespace) == {kept} | replaced else None

    after = eventually(restarted_report, what="the restarted operator's report")
    assert after[gone]["startedAt"] < after[gone]["endedAt"] <= after[kept]["lastSeenAt"]
    assert after[kept]["startedAt"] == serving[kept]["startedAt"]  # the same interval goes on

    kit.custom.patch_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", MD, {"spec": {"replicas": 1}}
    )
    eventually(lambda: len(open_replicas(ledger_api, namespace)) == 1, what="one interval closed on scale-in")
    kit.custom.delete_namespaced_custom_object("modelplex.dev", "v1alpha1", namespace, "modeldeployments", MD)
    eventually(lambda: not open_replicas(ledger_api, namespace), what="every interval closed on delete")
    assert len(intervals(ledger_api, namespace)) == 3
    logs = reporting_operator.logs()
    assert "Failed capacity report" not in logs, logs
    assert "Traceback" not in logs, logs


def ledger_decisions(ledger_api: str, model: str) -> list[Row]:
    reply = httpx.get(
        f"{ledger_api}/admin/v1/capacity/scaling-decisions",
        params={"model": model, "start": "2026-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"},
        headers=_auth(),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    rows: list[Row] = reply.json()["data"]
    return rows


def test_the_autoscalers_decisions_reach_the_ledger_as_the_status_states_them(
    kit: Kit,
    reporting_operator: OperatorProcess,
    ledger_api: str,
    namespace: str,
    metrics_proxy: MetricsProxy,
) -> None:
    kit.wait_free_gpus(3)
    metrics_proxy.default = engine_page(running=20, kv_cache=0.5)  # on each replica: 2.5 replicas' worth
    md = {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "scaled"},
        "spec": {
            "model": {"source": "hf://org/model", "servedName": "scaled-8b"},
            "replicas": 1,
            "scaling": {"minReplicas": 1, "maxReplicas": 3, "targets": {"queueDepthPerReplica": 8}},
        },
    }
    kit.create(md, namespace)

    def status_decisions() -> list[Row] | None:
        found = ((kit.md(namespace, "scaled").get("status") or {}).get("scaling") or {}).get("decisions")
        return found if found and found[-1]["to"] == 3 else None

    status = eventually(status_decisions, timeout=60, what="a scale-up to 3 in status.scaling")

    def recorded() -> list[Row] | None:
        rows = ledger_decisions(ledger_api, "scaled-8b")
        return rows if len(rows) >= len(status) else None

    eventually(recorded, what="the decisions in the ledger")
    time.sleep(5)  # a few more reports, each carrying the same decisions again: still each one once
    status = status_decisions() or []
    rows = ledger_decisions(ledger_api, "scaled-8b")
    assert [(r["fromReplicas"], r["toReplicas"], r["reason"], r["message"]) for r in reversed(rows)] == [
        (d["from"], d["to"], d["reason"], d["message"]) for d in status
    ]
    assert {(r["namespace"], r["deployment"]) for r in rows} == {(namespace, "scaled")}
    reading = httpx.get(
        f"{ledger_api}/admin/v1/capacity/scaling-readings", params={"model": "scaled-8b"}, headers=_auth()
    ).json()["data"]
    assert [(r["deployment"], r["desiredReplicas"], r["kvCacheUtilization"]) for r in reading] == [
        ("scaled", 3, 0.5)
    ]
    assert reading[0]["running"] >= 20  # 20 on each ready replica
    kit.custom.delete_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", "scaled"
    )
    logs = reporting_operator.logs()
    assert "Failed capacity report" not in logs, logs
