"""The kopf handlers: coroutines on the event loop that feed the Store and queue the owner."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from modelplex.crds import labels
from modelplex.kube.credentials import KubeCredentials
from modelplex.operator.controller import Controller
from modelplex.operator.handlers import build_registry
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.store import Store

CREDENTIALS = KubeCredentials("https://127.0.0.1:6443")


def _registry() -> tuple[Controller, Any]:
    controller = Controller(OperatorSettings(kubeconfig=None), Store(), applier=None)  # type: ignore[arg-type]
    return controller, build_registry(controller, CREDENTIALS)


def _handler(registry: Any, plural: str) -> Any:
    (handler,) = [h for h in registry._watching.get_all_handlers() if h.selector.any_name == plural]
    return handler.fn


def test_every_handler_is_a_coroutine_so_kopf_does_not_run_it_in_a_thread() -> None:
    _, registry = _registry()
    handlers = [*registry._watching.get_all_handlers(), *registry._activities.get_all_handlers()]
    handlers += registry._indexing.get_all_handlers()
    assert len(handlers) == 10  # login, ModelDeployments, five child kinds, pods, nodes (event, index)
    assert all(inspect.iscoroutinefunction(handler.fn) for handler in handlers)


def test_events_update_the_store_and_queue_the_owning_model_deployment() -> None:
    controller, registry = _registry()
    owned = {labels.DEPLOYMENT: "m", labels.MANAGED_BY: labels.MANAGED_BY_VALUE}
    md = {"metadata": {"namespace": "ns", "name": "m", "managedFields": [{"manager": "kubectl"}]}}
    service = {"metadata": {"namespace": "ns", "name": "m", "labels": owned}}
    pod = {"metadata": {"namespace": "ns", "name": "m-0", "labels": owned}, "status": {"phase": "Running"}}

    async def scenario() -> list[tuple[str, str]]:
        await _handler(registry, labels.PLURAL)(event={"type": "ADDED", "object": md})
        await _handler(registry, "services")(event={"type": "ADDED", "object": service})
        await _handler(registry, "pods")(event={"type": "MODIFIED", "object": pod})
        queued = [await asyncio.wait_for(controller.queue.get(), 1)]
        controller.queue.done(queued[0])
        await _handler(registry, "services")(event={"type": "DELETED", "object": service})
        queued.append(await asyncio.wait_for(controller.queue.get(), 1))
        return queued

    assert asyncio.run(scenario()) == [("ns", "m"), ("ns", "m")]
    store = controller.store
    stored = store.deployment(("ns", "m"))
    assert stored is not None
    assert "managedFields" not in stored["metadata"]
    assert store.children_of(("ns", "m")) == {}
    assert [p.phase for p in store.pods_of(("ns", "m"))] == ["Running"]


def test_a_new_spec_goes_first_but_an_echo_of_our_status_write_does_not() -> None:
    controller, registry = _registry()
    on_model = _handler(registry, labels.PLURAL)

    def md(name: str, generation: int, status: dict[str, Any] | None = None) -> dict[str, Any]:
        metadata = {"namespace": "ns", "name": name, "generation": generation}
        return {"type": "MODIFIED", "object": {"metadata": metadata, "status": status or {}}}

    async def order(*events: dict[str, Any]) -> list[str]:
        for event in events:
            await on_model(event=event)
        names = []
        while len(controller.queue):
            key = await asyncio.wait_for(controller.queue.get(), 1)
            controller.queue.done(key)
            names.append(key[1])
        return names

    async def scenario() -> list[list[str]]:
        first = await order(md("a", 1), md("b", 1))  # both new: urgent, in order
        controller.queue.add(("ns", "a"))  # a pod of "a" moved: routine
        echoed = await order(md("b", 1, {"replicas": 1}))  # our status write on "b": routine, after "a"
        controller.queue.add(("ns", "a"))
        edited = await order(md("b", 2))  # a new spec of "b": before the routine "a"
        return [first, echoed, edited]

    assert asyncio.run(scenario()) == [["a", "b"], ["a", "b"], ["b", "a"]]
