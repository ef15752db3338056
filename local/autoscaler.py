"""The autoscaler of `modelplex up`: the operator's policy, fed by this machine's workers and gateway.

Every interval, each deployment with spec.scaling is read — each ready worker's /metrics and the
gateway's own /metrics (its queue holds requests for a model at zero workers) — and decided with the
same pure policy the operator uses; a new replica count is written to the replicas file that
`modelplex scale` writes, which the runtime applies within a second. A gateway `Service`: it starts
after the workers' runtime and stops with the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelplex.local.capacity import NAMESPACE
from modelplex.local.runtime import write_override
from modelplex.local.workers import DeploymentState, WorkerPool
from modelplex.operator.apply import now_rfc3339
from modelplex.operator.autoscaler.policy import Decision, Fleet, decide
from modelplex.operator.autoscaler.record import ModelRecord, event_message, scaling_report
from modelplex.operator.autoscaler.settings import AutoscalerSettings
from modelplex.operator.autoscaler.signals import read_pages
from modelplex.operator.autoscaler.source import SignalSource, signal_source

log = logging.getLogger(__name__)


class LocalAutoscaler:
    def __init__(
        self,
        settings: AutoscalerSettings,
        pool: WorkerPool,
        gateway_url: str,
        replicas_file: Path,
        clock: Callable[[], float] = time.monotonic,
        gateway_metrics_token: str | None = None,
    ) -> None:
        self._settings = settings
        self._policy = settings.policy()
        self._pool = pool
        self._gateway_metrics = f"{gateway_url.rstrip('/')}/metrics"
        self._replicas_file = replicas_file
        self._gateway_metrics_token = gateway_metrics_token
        self._clock = clock
        self._records: dict[str, ModelRecord] = {}  # as the operator keeps them (the same decisions)
        self._answered: dict[str, dict[str, float]] = {}
        self._source: SignalSource | None = None
        self._task: asyncio.Task[None] | None = None
        self.decisions: list[tuple[str, int, int, str]] = []  # (deployment, from, to, reason)

    def reports(self) -> list[dict[str, Any]]:
        """What the capacity recording carries to the ledger: each scaled deployment's last reading and
        decisions, as the operator reports them (namespace "local")."""
        reports = (scaling_report(NAMESPACE, name, record) for name, record in self._records.items())
        return [found for found in reports if found is not None]

    async def start(self) -> None:
        if self._settings.enabled:
            self._source = signal_source(self._settings, self._gateway_metrics_token)
            self._task = asyncio.create_task(self._run(), name="local-autoscaler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._source is not None:
            await self._source.close()

    async def _run(self) -> None:
        while True:
            for name, state in list(self._pool.deployments.items()):
                if state.template.manifest.deployment.spec.scaling is not None:
                    await self.step(name, state)
            await asyncio.sleep(self._settings.interval_seconds)

    async def step(self, name: str, state: DeploymentState) -> Decision:
        scaling = state.template.manifest.deployment.spec.scaling
        assert scaling is not None
        assert self._source is not None
        ready = [w for w in state.workers if w.ready]
        engines = [f"{w.url}/metrics" for w in ready]
        pages = await self._source.pages(engines, [self._gateway_metrics])
        model = state.template.served_name
        reading = read_pages(pages, engines, [self._gateway_metrics], model, self._answered.get(name, {}))
        self._answered[name] = reading.answered
        fleet = Fleet(replicas=state.template.replicas, ready=len(ready))
        record = self._records.setdefault(name, ModelRecord())
        decision = decide(scaling, fleet, reading.signals, record.history, self._clock(), self._policy)
        record.read(decision, reading.signals, model, now_rfc3339())
        if decision.able and decision.replicas != state.template.replicas:
            before = state.template.replicas
            write_override(self._replicas_file, name, decision.replicas)
            record.scaled(decision, before, reading.signals, now_rfc3339())
            self.decisions.append((name, before, decision.replicas, decision.reason))
            message = event_message(before, decision.replicas, decision)
            log.info("%s deployment=%s reason=%s", message, name, decision.reason)
        return decision
