"""desired(), plan() and the status computation: the pure core of the reconcile."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from modelplex.crds.resource import ModelDeployment
from modelplex.crds.status import ModelDeploymentStatus
from modelplex.operator.desired import desired
from modelplex.operator.fit import FitVerdict, check_fit
from modelplex.operator.plan import Apply, Delete, covers, plan
from modelplex.operator.queue import WorkQueue
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.status import (
    Observed,
    PodState,
    StatusInput,
    compute_status,
    invalid_status,
    transitions,
)

SETTINGS = OperatorSettings(kubeconfig=None)
UNKNOWN = FitVerdict(None, "GPU memory check skipped: model.parameterCount is not declared")


def _md(generation: int = 1, **spec: Any) -> ModelDeployment:
    return ModelDeployment.from_body(
        {
            "apiVersion": "modelplex.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "m", "namespace": "ns", "uid": "uid-1", "generation": generation},
            "spec": {"model": {"source": "hf://org/model"}, **spec},
        }
    )


def _kinds(manifests: list[dict[str, Any]]) -> list[str]:
    return [m["kind"] for m in manifests]


def test_one_node_replica_is_a_deployment_with_owner_and_labels() -> None:
    children = desired(_md(parallelism={"tensor": 4}), SETTINGS, UNKNOWN)
    assert _kinds(children) == ["Service", "Deployment", "PodDisruptionBudget"]
    deployment = children[1]
    assert deployment["metadata"]["ownerReferences"][0] == {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "name": "m",
        "uid": "uid-1",
        "controller": True,
    }
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["modelplex.dev/serving"] == "true"
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] == 1800
    assert pod["spec"]["terminationGracePeriodSeconds"] == 120


def test_multi_node_replica_is_a_leader_worker_set() -> None:
    children = desired(_md(parallelism={"tensor": 8, "pipeline": 4}), SETTINGS, UNKNOWN)
    (lws,) = [c for c in children if c["kind"] == "LeaderWorkerSet"]
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 4
    leader = template["leaderTemplate"]["spec"]["containers"][0]
    worker = template["workerTemplate"]["spec"]["containers"][0]
    assert leader["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert "--headless" in worker["args"]
    assert "--headless" not in leader["args"]
    assert "readinessProbe" in leader
    assert "readinessProbe" not in worker
    assert "modelplex.dev/serving" not in template["workerTemplate"]["metadata"]["labels"]


def test_no_workload_when_the_model_cannot_fit_and_a_cache_claim_when_asked() -> None:
    md = _md(cache={"size": "200Gi"})
    children = desired(md, SETTINGS, FitVerdict(False, "needs more"))
    assert _kinds(children) == ["PersistentVolumeClaim", "Service"]
    fitting = desired(md, SETTINGS, UNKNOWN)
    volumes = fitting[2]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "cache", "persistentVolumeClaim": {"claimName": "m-model-cache"}} in volumes


def test_plan_creates_missing_repairs_drift_and_deletes_leftovers() -> None:
    md = _md()
    children = desired(md, SETTINGS, check_fit(md.spec))
    assert [a.why for a in plan(children, {}, "uid-1") if isinstance(a, Apply)] == ["missing"] * 3
    observed = {(c["kind"], c["metadata"]["name"]): _as_served(c) for c in children}
    assert plan(children, observed, "uid-1") == []
    drifted = copy.deepcopy(observed)
    drifted[("Deployment", "m")]["spec"]["replicas"] = 7
    (action,) = plan(children, drifted, "uid-1")
    assert isinstance(action, Apply)
    assert action.why == "drifted"
    assert action.key == ("Deployment", "m")
    leftover = copy.deepcopy(observed[("Deployment", "m")]) | {"kind": "LeaderWorkerSet"}
    observed[("LeaderWorkerSet", "m")] = leftover
    assert plan(children, observed, "uid-1") == [Delete("apps/v1", "LeaderWorkerSet", "ns", "m")]
    assert plan(children, observed, "someone-else") == []


def _as_served(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: our fields plus defaults and status."""
    served = copy.deepcopy(manifest)
    served["metadata"]["resourceVersion"] = "1"
    served["status"] = {}
    served["spec"]["extra"] = "defaulted"
    return served


def test_covers_ignores_extra_fields_but_not_changed_values() -> None:
    assert covers({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}}, {"b": {"c": [1, {"d": 2}]}})
    assert not covers({"b": {"c": [1]}}, {"b": {"c": [1, 2]}})
    assert not covers({"a": "1"}, {"a": 1})


def _workload(replicas: int, ready: int, updated: int | None = None) -> dict[str, Any]:
    return {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas if updated is None else updated,
        },
    }


def _status(
    md: ModelDeployment,
    observed: Observed,
    previous: ModelDeploymentStatus | None = None,
    verdict: FitVerdict = UNKNOWN,
    now: str = "T1",
) -> ModelDeploymentStatus:
    given = StatusInput(
        md=md,
        verdict=verdict,
        observed=observed,
        endpoint="http://m.ns.svc:8000/v1",
        nodes_per_replica=1,
        previous=previous or ModelDeploymentStatus(),
        now=now,
    )
    return compute_status(given)


def _conditions(status: ModelDeploymentStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_status_when_all_replicas_are_ready() -> None:
    status = _status(_md(replicas=2), Observed(_workload(2, 2), ()))
    assert _conditions(status) == {
        "Ready": ("True", "AllReplicasReady"),
        "Available": ("True", "ReplicasAvailable"),
        "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "AsExpected"),
    }
    assert "GPU memory check skipped" in status.conditions[0].message
    assert status.selector == "modelplex.dev/deployment=m,modelplex.dev/serving=true"
    assert (status.replicas, status.ready_replicas, status.observed_generation) == (2, 2, 1)
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert (wire["readyReplicas"], wire["gpusPerReplica"], wire["conditions"][0]["lastTransitionTime"]) == (
        2,
        1,
        "T1",
    )


def test_status_names_insufficient_gpus_and_gpu_memory() -> None:
    pod = PodState("m-1", "Pending", False, "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.", None)
    status = _status(_md(replicas=2), Observed(_workload(2, 1), (pod,)))
    assert _conditions(status)["Ready"] == ("False", "InsufficientGPU")
    assert _conditions(status)["Available"] == ("True", "ReplicasAvailable")
    assert _conditions(status)["Degraded"] == ("True", "InsufficientGPU")
    big = _status(_md(), Observed(None, ()), verdict=FitVerdict(False, "needs 700 GiB"))
    assert _conditions(big)["Ready"] == ("False", "InsufficientGPUMemory")
    assert big.conditions[0].message == "needs 700 GiB"


def test_transition_time_changes_only_when_status_flips() -> None:
    md = _md(replicas=2)
    starting = _status(md, Observed(_workload(2, 0), ()), now="T1")
    still = _status(md, Observed(_workload(2, 1), ()), previous=starting, now="T2")
    ready = _status(md, Observed(_workload(2, 2), ()), previous=still, now="T3")
    times = [{c.type: c.last_transition_time for c in s.conditions} for s in (starting, still, ready)]
    assert times[1]["Ready"] == "T1"  # message changed (1/2 ready), status did not
    assert times[1]["Available"] == "T2"  # flipped to True
    assert times[2]["Ready"] == "T3"
    assert [t.reason for t in transitions(still, ready)] == ["AllReplicasReady"]
    assert transitions(ready, ready) == []


def test_scaled_to_zero_is_not_ready_but_not_degraded() -> None:
    status = _status(_md(replicas=0), Observed(_workload(0, 0), ()))
    assert _conditions(status)["Ready"] == ("False", "ScaledToZero")
    assert _conditions(status)["Degraded"] == ("False", "AsExpected")


def test_work_queue_runs_a_key_once_and_again_if_added_while_running() -> None:
    async def scenario() -> list[tuple[str, str]]:
        queue = WorkQueue()
        key = ("ns", "m")
        queue.add(key)
        queue.add(key)
        assert len(queue) == 1
        got = [await queue.get()]
        queue.add(key)  # while in progress: runs again after done()
        assert len(queue) == 0
        queue.done(key)
        got.append(await asyncio.wait_for(queue.get(), 1))
        queue.done(key)
        return got

    assert asyncio.run(scenario()) == [("ns", "m"), ("ns", "m")]


def test_invalid_spec_keeps_the_status_and_says_which_field_is_wrong() -> None:
    serving = _status(_md(replicas=2), Observed(_workload(2, 2), ()), now="T1")
    refused = invalid_status(
        ["spec.replicas: Input should be a valid integer"], 2, _workload(2, 2), serving, "T2"
    )
    assert _conditions(refused) == {
        "Ready": ("False", "InvalidSpec"),
        "Available": ("True", "ReplicasAvailable"),  # the last valid spec still serves
        "Progressing": ("False", "InvalidSpec"),
        "Degraded": ("True", "InvalidSpec"),
    }
    assert "spec.replicas" in refused.conditions[0].message
    assert (refused.observed_generation, refused.ready_replicas, refused.endpoint) == (2, 2, serving.endpoint)
    (event,) = transitions(serving, refused)
    assert (event.type, event.reason) == ("Warning", "InvalidSpec")
    assert "spec.replicas" in event.message
