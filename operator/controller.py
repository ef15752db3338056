"""The reconcile loop: a work queue of ModelDeployment keys, fed by watch events and a resync timer.

reconcile(key) = desired() -> plan() -> apply -> status, all from the Store's current view; it is
level-based, so any trigger (create, update, resume, a child changed or vanished, the timer) runs
the same code and a key queued many times is reconciled once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from modelplex.crds.resource import ModelDeployment, ObjectMeta
from modelplex.crds.status import ModelDeploymentStatus
from modelplex.crds.validation import field_errors
from modelplex.kube.errors import ApiError
from modelplex.operator.apply import Applier, now_rfc3339
from modelplex.operator.autoscaler.record import ScalingView
from modelplex.operator.desired import desired, endpoint, nodes_per_replica
from modelplex.operator.fit import check_fit
from modelplex.operator.plan import plan
from modelplex.operator.queue import WorkQueue
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.status import (
    Observed,
    StatusInput,
    compute_status,
    invalid_status,
    read_status,
    transitions,
)
from modelplex.operator.store import Key, Store

log = logging.getLogger(__name__)
Manifest = dict[str, Any]


class Controller:
    def __init__(self, settings: OperatorSettings, store: Store, applier: Applier) -> None:
        self.settings = settings
        self.store = store
        self.applier = applier
        self.queue = WorkQueue()
        # The autoscaler's view of each model, for the status (set by the runner when it runs one).
        self.scaling_view: Callable[[Key], ScalingView | None] = lambda key: None

    async def run(self) -> None:
        """Workers and the resync timer, until cancelled."""
        workers = [
            asyncio.create_task(self._worker(), name=f"reconcile-{i}") for i in range(self.settings.workers)
        ]
        try:
            while True:
                await asyncio.sleep(self.settings.resync_seconds)
                for key in self.store.deployment_keys():
                    self.queue.add(key)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            started = time.monotonic()
            try:
                await self.reconcile(key)
                elapsed = time.monotonic() - started
                if elapsed > self.settings.slow_reconcile_seconds:
                    log.warning(
                        "Reconciled slowly ModelDeployment namespace=%s name=%s seconds=%.2f queued=%d",
                        *key,
                        elapsed,
                        len(self.queue),
                    )
            except Exception as error:
                log.warning("Failed to reconcile ModelDeployment namespace=%s name=%s error=%r", *key, error)
                self.queue.add_after(key, self.settings.retry_seconds)
            finally:
                self.queue.done(key)

    async def reconcile(self, key: Key) -> None:
        body = self.store.deployment(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return  # children go with it: the garbage collector follows their owner references
        try:
            md = ModelDeployment.from_body(body)
        except ValidationError as error:
            await self._refuse(key, body, field_errors(error))
            return
        verdict = check_fit(md.spec, self.store.gpu_nodes())
        wanted = desired(md, self.settings, verdict)
        actions = plan(wanted, self.store.children_of(key), md.metadata.uid)
        result = await self.applier.execute(md, actions)
        for child in result.applied:
            self.store.put_child(child)
        for gone in result.deleted:
            self.store.forget_child(key, (gone.kind, gone.name))
        if (event := result.event()) is not None:
            await self.applier.event(md.metadata, event)
        observed = Observed(self.store.workload_of(key), self.store.pods_of(key), result.error)
        given = StatusInput(
            md=md,
            verdict=verdict,
            observed=observed,
            endpoint=endpoint(md, self.settings),
            nodes_per_replica=nodes_per_replica(md),
            previous=read_status(body),
            now=now_rfc3339(),
            scaling=self.scaling_view(key) if md.spec.scaling is not None else None,
        )
        await self._write_status(
            ObjectMeta.model_validate(body["metadata"]), given.previous, compute_status(given)
        )
        if result.error:
            self.queue.add_after(key, self.settings.retry_seconds)

    async def _refuse(self, key: Key, body: Manifest, problems: list[str]) -> None:
        """A spec this operator cannot read (e.g. the CRD in the cluster is older than the operator):
        say which fields are wrong, on the object, and leave its children as they are."""
        meta = ObjectMeta.model_validate(body["metadata"])
        log.warning(
            "Refused invalid ModelDeployment namespace=%s name=%s problems=%s", *key, "; ".join(problems)
        )
        previous = read_status(body)
        status = invalid_status(
            problems, meta.generation, self.store.workload_of(key), previous, now_rfc3339()
        )
        await self._write_status(meta, previous, status)

    async def _write_status(
        self, meta: ObjectMeta, previous: ModelDeploymentStatus, status: ModelDeploymentStatus
    ) -> None:
        if status == previous:
            return
        try:
            result = await self.applier.write_status(meta.namespace, meta.name, status)
        except ApiError as error:
            if error.status == 404:
                return  # deleted meanwhile
            raise
        self.store.put_deployment(result)
        for transition in transitions(previous, status):
            log.info(
                "Changed Ready name=%s namespace=%s reason=%s", meta.name, meta.namespace, transition.reason
            )
            await self.applier.event(meta, transition)
