"""Engine worker processes of the local runtime: started, probed, replaced and stopped."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from modelplex import processes
from modelplex.local.cpu_slots import BIND_VARIABLE, omp_binding, planned_slots
from modelplex.local.templates import WorkerTemplate
from modelplex.processes import Component, free_port

log = logging.getLogger(__name__)


@dataclass
class Worker:
    deployment: str
    replica: int
    port: int
    process: Component
    slot: int = 0  # which share of the machine's cores it computes on (local/cpu_slots.py)
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    ready_since: datetime | None = None  # wall clock: when it last became ready (the capacity ledger)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def id(self) -> str:
        return f"{self.deployment}-{self.replica}"


@dataclass
class DeploymentState:
    template: WorkerTemplate
    workers: list[Worker] = field(default_factory=list)
    failure: str | None = None  # set when a replica could not start; cleared when the file changes


class WorkerPool:
    """Keeps each deployment at its replica count. Workers die with this process (PDEATHSIG).

    `cores`: for CPU engines, the cores to share out between the workers running at once (None: each
    engine binds itself, as on GPUs or when the user set the binding). `auto_dtype`: what a
    deployment's `dtype: auto` runs as here (None: the model's own)."""

    def __init__(
        self,
        launcher: list[str],
        env: dict[str, str],
        log_dir: Path,
        start_timeout: float,
        cores: Sequence[int] | None = None,
        auto_dtype: str | None = None,
    ) -> None:
        self._launcher = launcher
        self._env = env
        self._cores = cores
        self._auto_dtype = auto_dtype
        self._log_dir = log_dir
        self._start_timeout = start_timeout
        self.deployments: dict[str, DeploymentState] = {}

    def set_templates(self, templates: list[WorkerTemplate]) -> None:
        """Adopt new templates; a deployment whose engine flags changed gets all-new workers."""
        wanted = {t.deployment: t for t in templates}
        for name in list(self.deployments):
            if name not in wanted:
                self._stop(self.deployments.pop(name).workers)
        for name, template in wanted.items():
            state = self.deployments.get(name)
            if state is None:
                self.deployments[name] = DeploymentState(template)
            elif state.template != template:
                if _engine_changed(state.template, template):
                    self._stop(state.workers)
                    state.workers = []
                state.template, state.failure = template, None

    def reconcile(self) -> bool:
        """Start or stop workers to match the replica counts; True when the set of workers changed."""
        changed = False
        for state in self.deployments.values():
            if state.failure is not None:
                continue
            extra = state.workers[state.template.replicas :]
            if extra:
                state.workers = state.workers[: state.template.replicas]
                self._stop(extra)
                changed = True
            while len(state.workers) < state.template.replicas:
                state.workers.append(self._start(state))
                changed = True
        return changed

    def failures(self) -> list[str]:
        return [s.failure for s in self.deployments.values() if s.failure is not None]

    def _start(self, state: DeploymentState) -> Worker:
        used = {w.replica for w in state.workers}
        replica = next(i for i in range(len(used) + 1) if i not in used)
        port = free_port()
        argv = state.template.argv(self._launcher, port, self._auto_dtype)
        name = f"{state.template.deployment}-{replica}"
        slot, env = self._slot_and_environment()
        component = processes.start(name, argv, self._log_dir, env=env)
        log.info(
            "Started worker deployment=%s replica=%d port=%d cores=%s log=%s",
            name,
            replica,
            port,
            env.get(BIND_VARIABLE, "engine's own"),
            component.log,
        )
        return Worker(state.template.deployment, replica, port, component, slot)

    def _slot_and_environment(self) -> tuple[int, dict[str, str]]:
        """The lowest slot no running worker holds, and the environment that binds a worker to it."""
        held = {worker.slot for state in self.deployments.values() for worker in state.workers}
        slot = next(i for i in range(len(held) + 1) if i not in held)
        if self._cores is None:
            return slot, self._env
        templates = (state.template for state in self.deployments.values())
        binding = omp_binding(slot, planned_slots(templates), self._cores)
        return slot, self._env if binding is None else {**self._env, BIND_VARIABLE: binding}

    def _stop(self, workers: list[Worker]) -> None:
        if workers:
            processes.stop([w.process for w in workers])
            for worker in workers:
                log.info("Stopped worker deployment=%s replica=%d", worker.deployment, worker.replica)

    async def probe(self, http: httpx.AsyncClient) -> bool:
        """Refresh readiness and replace dead workers; True when anything changed."""
        changed = False
        for state in self.deployments.values():
            for worker in list(state.workers):
                changed |= await self._probe_one(state, worker, http)
        return changed

    async def _probe_one(self, state: DeploymentState, worker: Worker, http: httpx.AsyncClient) -> bool:
        if not worker.process.running():
            state.workers.remove(worker)
            reason = (
                f"{worker.id} exited; last log lines ({worker.process.log}):\n{worker.process.log_tail()}"
            )
            if not worker.ready:  # it never came up: starting it again would fail the same way
                state.failure = reason
            log.error(
                "Worker exited deployment=%s replica=%d ready=%s",
                worker.deployment,
                worker.replica,
                worker.ready,
            )
            return True
        try:
            healthy = (await http.get(f"{worker.url}/health", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if not worker.ready and not healthy and time.monotonic() - worker.started_at > self._start_timeout:
            self._stop([worker])
            state.workers.remove(worker)
            state.failure = f"{worker.id} did not become healthy within {self._start_timeout:.0f}s"
            return True
        if healthy != worker.ready:
            worker.ready = healthy
            worker.ready_since = datetime.now(UTC) if healthy else None
            # Once per change: the checks themselves (every poll) are not worth a line.
            log.info(
                "Worker became %s deployment=%s replica=%d",
                "healthy" if healthy else "unhealthy",
                worker.deployment,
                worker.replica,
            )
            return True
        return False

    def stop_all(self) -> None:
        self._stop([w for state in self.deployments.values() for w in state.workers])
        for state in self.deployments.values():
            state.workers = []


def _engine_changed(old: WorkerTemplate, new: WorkerTemplate) -> bool:
    """Replica count and access are applied live; anything else means new engine processes."""
    probe = 0
    return old.argv([], probe) != new.argv([], probe) or old.model_dir != new.model_dir
