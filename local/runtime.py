"""The local runtime: watches the ModelDeployment files and replica overrides, keeps the workers in
step, and publishes the ready ones to the gateway as a discovery source."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx

from modelplex.gateway.discovery.base import Catalog, EndpointSpec, ModelSpec, Publish
from modelplex.local.capacity import LocalCapacity
from modelplex.local.manifests import ManifestError, load_all
from modelplex.local.settings import LocalSettings
from modelplex.local.templates import PlanError, WorkerTemplate, worker_template
from modelplex.local.workers import WorkerPool

log = logging.getLogger(__name__)


def read_overrides(path: Path) -> dict[str, int]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in raw.items() if isinstance(v, int) and v >= 0}


def write_override(path: Path, name: str, replicas: int) -> None:
    """Sets the replicas of deployment `name` (what `modelplex scale` and the autoscaler write)."""
    current = read_overrides(path)
    current[name] = replicas
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(current))
    temporary.replace(path)


def load_templates(settings: LocalSettings, files: list[Path], models_dir: Path) -> list[WorkerTemplate]:
    """Load and plan every file; raises ManifestError or PlanError naming what is wrong."""
    overrides = read_overrides(settings.replicas_file)
    return [worker_template(m, models_dir, overrides.get(m.name)) for m in load_all(files)]


def catalog(pool: WorkerPool) -> Catalog:
    models = []
    for state in pool.deployments.values():
        template = state.template
        endpoints = tuple(EndpointSpec(url=w.url, id=w.id, ready=w.ready) for w in state.workers)
        models.append(
            ModelSpec(
                name=template.served_name,
                deployment=template.deployment,
                access=template.access,
                max_model_len=template.context_tokens,
                endpoints=endpoints,
            )
        )
    return Catalog(models=tuple(models))


class LocalRuntime:
    """A gateway `Service` (started and stopped with it) and its `DiscoverySource`."""

    def __init__(
        self,
        settings: LocalSettings,
        files: list[Path],
        models_dir: Path,
        pool: WorkerPool,
        on_ready: Callable[[], None] = lambda: None,
        on_failure: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._settings = settings
        self._files = files
        self._models_dir = models_dir
        self.pool = pool
        self._on_ready = on_ready
        self._on_failure = on_failure
        self._announced = False
        self._stamps: tuple[float, ...] = ()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.capacity: LocalCapacity | None = None  # set by the stack once the ledger is prepared

    def _file_stamps(self) -> tuple[float, ...]:
        paths = [*self._files, self._settings.replicas_file]
        return tuple(p.stat().st_mtime if p.exists() else 0.0 for p in paths)

    def _reload_if_changed(self) -> None:
        stamps = self._file_stamps()
        if stamps == self._stamps:
            return
        self._stamps = stamps
        try:
            self.pool.set_templates(load_templates(self._settings, self._files, self._models_dir))
        except (ManifestError, PlanError) as error:
            log.error("Kept the running deployments: the files are invalid now\n%s", error)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="local-runtime")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.pool.stop_all()
        if self.capacity is not None:
            await self.capacity.close(self.pool)

    async def _supervise(self) -> None:
        async with httpx.AsyncClient() as http:
            while True:
                self._reload_if_changed()
                if self.pool.reconcile() | await self.pool.probe(http):
                    self._changed.set()
                self._write_status()
                if self.capacity is not None:
                    await self.capacity.observe(self.pool)
                if not self._announced and self.pool.failures():
                    self._on_failure("\n".join(self.pool.failures()))
                    return
                self._announce_once()
                await asyncio.sleep(self._settings.poll_interval_seconds)

    def _announce_once(self) -> None:
        states = self.pool.deployments.values()
        if not self._announced and states and all(any(w.ready for w in s.workers) for s in states):
            self._announced = True
            self._on_ready()

    def _write_status(self) -> None:
        status = {
            name: {
                "replicas": state.template.replicas,
                "ready": sum(w.ready for w in state.workers),
                "servedName": state.template.served_name,
                "workers": [
                    {"id": w.id, "url": w.url, "ready": w.ready, "pid": w.process.pid} for w in state.workers
                ],
                "failure": state.failure,
            }
            for name, state in self.pool.deployments.items()
        }
        target = self._settings.local_dir / "status.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(status, indent=2))
        temporary.replace(target)

    async def run(self, publish: Publish) -> None:
        """DiscoverySource: publish the catalog now and whenever a worker's readiness changes."""
        while True:
            self._changed.clear()
            await publish(catalog(self.pool))
            await self._changed.wait()
