"""The operator records replica serving intervals in a real ledger (`modelplex ledger serve` over
HTTP) from the readiness of kwok's pods on the real control plane: opened when pods turn Ready,
kept (not duplicated) across an operator restart, closed when a replica goes or its model is deleted."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplex.processes import free_port
from mpxtest.ledger import ADMIN_TOKEN, PEPPER
from mpxtest.operatorproc import MODELPLEX, OperatorProcess
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster


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
    operator_kubeconfig: Path, ledger_api: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    env = {
        "MODELPLEX_OPERATOR_LEDGER_URL": ledger_api,
        "MODELPLEX_OPERATOR_LEDGER_ADMIN_TOKEN": ADMIN_TOKEN,
        "MODELPLEX_OPERATOR_CAPACITY_REPORT_SECONDS": "2",
    }
    process = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log", env)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def intervals(ledger_api: str, namespace: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{ledger_api}/admin/v1/capacity/intervals", headers=_auth(), timeout=10)
    assert reply.status_code == 200, reply.text
    return [row for row in reply.json()["data"] if row["namespace"] == namespace]


def _open(ledger_api: str, namespace: str, count: int) -> list[dict[str, Any]] | None:
    found = [row for row in intervals(ledger_api, namespace) if row["endedAt"] is None]
    return found if len(found) == count else None


def test_pod_readiness_becomes_serving_intervals(
    kit: Any, reporting_operator: OperatorProcess, ledger_api: str, namespace: str
) -> None:
    kit.wait_free_gpus(2)
    md = {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "metered"},
        "spec": {"model": {"source": "hf://org/model", "servedName": "metered-8b"}, "replicas": 2},
    }
    kit.create(md, namespace)
    kit.wait_condition(namespace, "metered", "True", "AllReplicasReady")
    serving = eventually(lambda: _open(ledger_api, namespace, 2), timeout=30, what="two open intervals")
    pods = {pod.metadata.name: pod for pod in kit.running_pods(namespace)}
    assert sorted(row["replica"] for row in serving) == sorted(pods)
    for row in serving:
        node = kit.core.read_node(pods[row["replica"]].spec.node_name)
        assert (row["model"], row["deployment"], row["source"]) == ("metered-8b", "metered", "kubernetes")
        assert row["gpus"] == 1
        assert row["gpuProduct"] == (node.metadata.labels or {}).get("nvidia.com/gpu.product", "unknown")

    # a restarted operator sees the same pods still Ready: the intervals go on, none is added
    reporting_operator.kill()
    reporting_operator.start()
    seen = {row["replica"]: row["lastSeenAt"] for row in serving}

    def reported_again() -> bool:
        rows = intervals(ledger_api, namespace)
        return len(rows) == 2 and all(row["lastSeenAt"] > seen[row["replica"]] for row in rows)

    eventually(reported_again, timeout=60, what="a report from the restarted operator")

    kit.custom.patch_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", "metered", {"spec": {"replicas": 1}}
    )
    eventually(lambda: _open(ledger_api, namespace, 1), timeout=60, what="one interval closed on scale-in")
    kit.custom.delete_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", "metered"
    )
    eventually(lambda: _open(ledger_api, namespace, 0), timeout=60, what="every interval closed")
    assert len(intervals(ledger_api, namespace)) == 2
