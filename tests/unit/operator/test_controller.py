"""One reconcile, end to end through the Controller and the Applier, over a recording API transport."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from modelplex.operator.apply import Applier
from modelplex.operator.controller import Controller
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.store import Store

Manifest = dict[str, Any]
KEY = ("ns", "m")


class RecordingApi:
    """Answers like the API server would, and keeps every write."""

    def __init__(self) -> None:
        self.applied: list[Manifest] = []
        self.statuses: list[Manifest] = []
        self.events: list[Manifest] = []

    async def apply(self, manifest: Manifest, field_manager: str) -> Manifest:
        self.applied.append(manifest)
        return copy.deepcopy(manifest)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        pass

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> Manifest:
        self.statuses.append(status)
        return {**_body(), "status": status}

    async def create(self, manifest: Manifest) -> Manifest:
        self.events.append(manifest)
        return manifest


def _body(**spec: Any) -> Manifest:
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {"model": {"source": "hf://org/model"}, **spec},
    }


def _controller(body: Manifest) -> tuple[Controller, RecordingApi]:
    api = RecordingApi()
    store = Store()
    store.put_deployment(body)
    controller = Controller(OperatorSettings(kubeconfig=None), store, Applier(api, "modelplex-operator"))  # type: ignore[arg-type]
    return controller, api


def test_a_new_model_deployment_gets_children_and_a_typed_status_without_events() -> None:
    controller, api = _controller(_body())
    asyncio.run(controller.reconcile(KEY))
    assert sorted(m["kind"] for m in api.applied) == ["Deployment", "PodDisruptionBudget", "Service"]
    (status,) = api.statuses
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Available", "Progressing", "Degraded"]
    assert status["conditions"][0]["reason"] == "Starting"
    assert status["endpoint"] == "http://m.ns.svc.cluster.local:8000/v1"
    assert api.events == []  # creating children and starting up are not news
    asyncio.run(controller.reconcile(KEY))
    assert len(api.statuses) == 1  # the same status is not written twice


def test_a_spec_the_operator_cannot_read_is_refused_on_the_object_with_a_warning_naming_the_field() -> None:
    controller, api = _controller(_body(parallelism={"tensor": "many"}))
    asyncio.run(controller.reconcile(KEY))
    assert api.applied == []  # nothing is changed on the strength of a spec that cannot be read
    (status,) = api.statuses
    ready = status["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")
    assert "spec.parallelism.tensor" in ready["message"]
    (event,) = api.events
    assert (event["type"], event["reason"]) == ("Warning", "InvalidSpec")
    assert "spec.parallelism.tensor" in event["message"]
    assert event["involvedObject"]["uid"] == "uid-1"


def test_a_repaired_child_is_reported_by_the_caller_in_one_event() -> None:
    controller, api = _controller(_body())
    asyncio.run(controller.reconcile(KEY))
    service = next(m for m in api.applied if m["kind"] == "Service")
    edited = copy.deepcopy(service)
    edited["spec"]["ports"][0]["port"] = 9999
    controller.store.put_child(edited)
    asyncio.run(controller.reconcile(KEY))
    (event,) = api.events
    assert (event["type"], event["reason"]) == ("Normal", "RepairedDrift")
    assert event["message"] == "Repaired Service m"
