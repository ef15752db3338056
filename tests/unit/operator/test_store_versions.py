"""The store never lets an older copy of an object replace a newer one: the answers to the
operator's own writes race the watch, and a stale answer kept for good is a stuck status."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from modelplex.crds import labels
from modelplex.operator.apply import Applier
from modelplex.operator.controller import Controller
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.store import Store
from modelplex.operator.versions import Versions, supersedes

Manifest = dict[str, Any]
KEY = ("ns", "m")


@pytest.mark.parametrize(
    ("incoming", "held", "replaces"),
    [
        ("12", "10", True),
        ("10", "10", True),
        ("9", "10", False),
        ("100", "99", True),  # integers, not strings: "100" < "99" as text
        (None, "10", True),  # unordered copies: the newcomer wins, as a plain cache would
        ("10", None, True),
        ("abc", "10", True),
        ("010", "10", True),  # a leading zero is not a Kubernetes resourceVersion
    ],
)
def test_resource_versions_compare_as_integers_and_unordered_ones_let_the_newcomer_win(
    incoming: str | None, held: str | None, replaces: bool
) -> None:
    assert supersedes(incoming, held) is replaces


def _deployment(version: str, observed: int | None = None) -> Manifest:
    body: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "m",
            "namespace": "ns",
            "resourceVersion": version,
            "generation": 1,
            "labels": {labels.DEPLOYMENT: "m"},
        },
        "spec": {"replicas": 0},
    }
    if observed is not None:
        body["status"] = {"observedGeneration": observed}
    return body


def test_an_apply_answer_older_than_the_watch_event_already_kept_is_ignored() -> None:
    store = Store()
    store.put_child(_deployment("12", observed=1))  # the watch: the controller has seen it
    assert store.put_child(_deployment("10")) == KEY  # our apply's answer, arriving late
    workload = store.workload_of(KEY)
    assert workload is not None
    assert workload["metadata"]["resourceVersion"] == "12"
    assert workload["status"] == {"observedGeneration": 1}


def test_a_late_answer_cannot_bring_back_a_deleted_child_but_a_new_one_is_kept() -> None:
    store = Store()
    store.put_child(_deployment("10"))
    store.drop_child(_deployment("15"))
    store.put_child(_deployment("10"))
    assert store.workload_of(KEY) is None
    store.put_child(_deployment("20"))  # created again, later
    workload = store.workload_of(KEY)
    assert workload is not None
    assert workload["metadata"]["resourceVersion"] == "20"


def test_a_deletion_is_remembered_only_as_long_as_a_request_can_be_in_flight() -> None:
    now = [0.0]
    versions: Versions[str] = Versions(remember_deletions_seconds=300, clock=lambda: now[0])
    versions.delete("a", "15")
    now[0] = 299
    assert not versions.admit("a", "10")
    now[0] = 301
    assert versions.admit("a", "10")  # forgotten: nothing can still be answering from before it


def test_a_status_answer_older_than_a_new_spec_from_the_watch_does_not_hide_the_new_spec() -> None:
    store = Store()
    md: Manifest = {"metadata": {"name": "m", "namespace": "ns", "generation": 1, "resourceVersion": "5"}}
    store.put_deployment(md)
    newer_spec = copy.deepcopy(md)
    newer_spec["metadata"].update(generation=2, resourceVersion="9")
    assert store.put_deployment(newer_spec) is True
    stale_status_answer = copy.deepcopy(md)
    stale_status_answer["metadata"]["resourceVersion"] = "7"
    assert store.put_deployment(stale_status_answer) is False
    held = store.deployment(KEY)
    assert held is not None
    assert held["metadata"]["generation"] == 2


class SlowDeploymentApi:
    """Answers the Deployment's apply only after the watch has delivered the controller's status,
    as happens when the other children's applies take longer than the Deployment controller."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.version = 10

    async def apply(self, manifest: Manifest, field_manager: str) -> Manifest:
        answer = copy.deepcopy(manifest)
        self.version += 1
        answer["metadata"]["resourceVersion"] = str(self.version)
        if manifest["kind"] == "Deployment":
            seen_by_controller = copy.deepcopy(answer)
            seen_by_controller["metadata"]["resourceVersion"] = "99"
            seen_by_controller["status"] = {"observedGeneration": 1, "replicas": 0}
            self.store.put_child(seen_by_controller)  # the watch event, handled while we wait
            await asyncio.sleep(0)
        return answer

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        pass

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> Manifest:
        return {**_model_deployment(), "status": status}

    async def create(self, manifest: Manifest) -> Manifest:
        return manifest


def _model_deployment() -> Manifest:
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "ns", "uid": "uid-1", "generation": 1, "resourceVersion": "3"},
        "spec": {"model": {"source": "hf://org/model"}, "replicas": 0},
    }


def test_a_zero_replica_model_deployment_is_available_although_its_apply_answer_came_back_late() -> None:
    store = Store()
    store.put_deployment(_model_deployment())
    api = SlowDeploymentApi(store)
    controller = Controller(OperatorSettings(kubeconfig=None), store, Applier(api, "modelplex-operator"))  # type: ignore[arg-type]
    asyncio.run(controller.reconcile(KEY))
    workload = store.workload_of(KEY)
    assert workload is not None
    assert workload["status"]["observedGeneration"] == 1
    held = store.deployment(KEY)
    assert held is not None
    progressing = next(c for c in held["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] != "RollingOut", progressing


def test_a_terminating_pod_is_not_ready_in_the_store() -> None:
    store = Store()
    body: Manifest = {
        "metadata": {"name": "m-1", "namespace": "ns", "labels": {labels.DEPLOYMENT: "m"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    store.put_pod(body)
    assert [p.ready for p in store.pods_of(KEY)] == [True]
    store.put_pod({**body, "metadata": {**body["metadata"], "deletionTimestamp": "2026-05-04T09:00:00Z"}})
    assert [p.ready for p in store.pods_of(KEY)] == [False]
