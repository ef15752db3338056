"""Kubernetes discovery as the gateway runs it, on its own event loop in a thread (`discovered`), and the
ModelDeployments and serving pods the discovery tests make and read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelplex.gateway.discovery.base import Catalog, ModelSpec
from modelplex.gateway.discovery.kube import KubernetesSource
from modelplex.kube.credentials import load_credentials
from mpxtest.cluster import deleting
from mpxtest.wait import eventually


class RunningSource:
    """A KubernetesSource running on its own event loop in a thread; keeps the catalogs it published."""

    def __init__(self, source: KubernetesSource) -> None:
        self.catalogs: list[Catalog] = []
        self.error: BaseException | None = None
        self._source = source
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self._task = asyncio.current_task()
        try:
            await self._source.run(self._publish)
        except asyncio.CancelledError:
            pass
        except BaseException as error:
            self.error = error

    async def _publish(self, catalog: Catalog) -> None:
        self.catalogs.append(catalog)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        eventually(lambda: self._task, timeout=5, what="the source task to start")
        assert self._task is not None
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the discovery source did not stop"
        self._loop.close()

    def model(self, name: str) -> ModelSpec | None:
        """The model in the latest catalog (None when absent or nothing was published yet)."""
        assert self.error is None, f"the discovery source failed: {self.error!r}"
        if not self.catalogs:
            return None
        return next((m for m in self.catalogs[-1].models if m.name == name), None)


@pytest.fixture
def discovered(gateway_kubeconfig: Path, namespace: str) -> Iterator[RunningSource]:
    """Kubernetes discovery of the test's namespace, as the gateway's service account."""
    running = RunningSource(KubernetesSource(load_credentials(gateway_kubeconfig), namespace))
    running.start()
    try:
        yield running
    finally:
        running.stop()


def model_deployment(
    name: str, served_name: str, replicas: int, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    model = {"source": "hf://org/model", "servedName": served_name}
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"model": model, "replicas": replicas, **spec},
    }


def serving_pods(core: client.CoreV1Api, namespace: str, deployment: str) -> dict[str, str]:
    """Running, Ready, not deleting serving pods of `deployment`: pod name -> the URL to route to."""
    selector = f"modelplex.dev/deployment={deployment},modelplex.dev/serving=true"
    found: dict[str, str] = {}
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        status, metadata = pod.status, pod.metadata
        if status is None or metadata is None or metadata.name is None:
            continue
        ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
        if ready and status.phase == "Running" and not deleting(pod) and status.pod_ip:
            found[metadata.name] = f"http://{status.pod_ip}:8000"
    return found
