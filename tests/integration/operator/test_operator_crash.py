"""Fault: the operator killed (`kill -9`) while it reconciles 50 ModelDeployments, then started again.

It converges: every ModelDeployment gets exactly its children (one Deployment, one Service, one
PodDisruptionBudget, no LeaderWorkerSet) and the status its spec calls for, observed at its generation.
Zero replicas each, so the 16 GPUs of the shared dev cluster are not the limit.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster

COUNT = 50
SELECTOR = "app.kubernetes.io/managed-by=modelplex-operator"


def _md(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"source": "hf://org/model"}, "replicas": 0},
    }


def _owners(items: list[Any]) -> Counter[str]:
    """How many children each ModelDeployment (by name) owns."""
    owned: Counter[str] = Counter()
    for item in items:
        metadata = item["metadata"] if isinstance(item, dict) else item.metadata.to_dict()
        for owner in metadata.get("owner_references") or metadata.get("ownerReferences") or []:
            if owner["kind"] == "ModelDeployment":
                owned[owner["name"]] += 1
    return owned


EXPECTED = {  # what zero replicas call for
    "Ready": ("False", "ScaledToZero"),
    "Available": ("False", "ScaledToZero"),
    "Progressing": ("False", "RolloutComplete"),
    "Degraded": ("False", "AsExpected"),
}


def _unconverged(kit: Any, namespace: str, names: list[str]) -> str | None:
    """The first ModelDeployment whose status is not yet what its spec calls for, and its status."""
    for name in names:
        md = kit.md(namespace, name)
        status = md.get("status") or {}
        conditions = {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}
        observed = status.get("observedGeneration") == md["metadata"]["generation"]
        if not observed or any(conditions.get(kind) != value for kind, value in EXPECTED.items()):
            return f"{name}: {status}"
    return None


def test_killed_mid_reconcile_the_operator_converges_without_duplicates(
    kit: Any, operator: Any, namespace: str
) -> None:
    names = [f"crash-{i:02d}" for i in range(COUNT)]
    operator.stop()  # all 50 arrive at once when it starts, as after an outage or an upgrade
    for name in names:
        kit.create(_md(name), namespace)
    operator.start()

    def with_status() -> int:
        listed = kit.custom.list_namespaced_custom_object(
            "modelplex.dev", "v1alpha1", namespace, "modeldeployments"
        )
        return sum(bool((md.get("status") or {}).get("observedGeneration")) for md in listed["items"])

    eventually(lambda: with_status() >= 3, 60, 0.02, what="reconciling to have begun")
    operator.kill()
    done_at_kill = with_status()
    time.sleep(1)
    operator.start()

    last: list[str | None] = []

    def converged() -> bool:
        last.append(_unconverged(kit, namespace, names))
        return last[-1] is None

    try:
        eventually(converged, 180, 0.5, what="all 50 converged after the restart")
    except AssertionError as timeout:
        tail = operator.logs()[-3000:]
        raise AssertionError(f"{timeout}; still: {last[-1]}\noperator log:\n{tail}") from None
    deployments = kit.apps.list_namespaced_deployment(namespace, label_selector=SELECTOR).items
    services = kit.core.list_namespaced_service(namespace, label_selector=SELECTOR).items
    policies = kit.dynamic.resources.get(api_version="policy/v1", kind="PodDisruptionBudget")
    budgets = policies.get(namespace=namespace, label_selector=SELECTOR).to_dict()["items"]
    for children in (deployments, services, budgets):
        assert _owners(children) == Counter(dict.fromkeys(names, 1))
    assert kit.lws(namespace) == []
    assert done_at_kill < COUNT  # the kill did land mid-way: some had no status yet
    print(f"operator kill: {done_at_kill}/{COUNT} had a status at the kill; all {COUNT} converged after")
