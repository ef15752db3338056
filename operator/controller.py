"""The reconcile loop: a work queue of ModelDeployment keys, fed by watch events and a resync timer.

reconcile(key) = desired() -> plan() -> apply -> status, all from the Store's current view; it is
level-based, so any trigger (create, update, resume, a child changed or vanished, the timer) runs
the same code and a key queued many times is reconciled once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pydantic import ValidationError

from modelplex.crds.resource import ModelDeployment
from modelplex.operator.apply import Applier, now_rfc3339
from modelplex.operator.desired import desired, endpoint, nodes_per_replica
from modelplex.operator.fit import check_fit
from modelplex.operator.kube import ApiError
from modelplex.operator.plan import plan
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.status import Observed, compute_status, transitions
from modelplex.operator.store import Key, Store

log = logging.getLogger(__name__)
Manifest = dict[str, Any]
WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")


class WorkQueue:
    """Each key at most once in the queue and once in progress; re-added while in progress, it runs again.

    Urgent keys (a ModelDeployment is new or its spec changed) go before routine ones (its status, a
    child or a pod moved; the resync), so a new ModelDeployment does not wait behind a storm of pod
    updates, nor behind the echoes of the operator's own status writes.
    """

    def __init__(self) -> None:
        self._queue: asyncio.PriorityQueue[tuple[int, int, Key]] = asyncio.PriorityQueue()
        self._pending: dict[Key, int] = {}  # key -> best priority queued (0 urgent, 1 routine)
        self._active: set[Key] = set()
        self._dirty: dict[Key, int] = {}
        self._sequence = 0

    def add(self, key: Key, urgent: bool = False) -> None:
        priority = 0 if urgent else 1
        if key in self._active:
            self._dirty[key] = min(priority, self._dirty.get(key, 1))
        elif self._pending.get(key, 2) > priority:
            self._pending[key] = priority
            self._sequence += 1
            self._queue.put_nowait((priority, self._sequence, key))

    def add_after(self, key: Key, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    async def get(self) -> Key:
        while True:
            priority, _, key = await self._queue.get()
            if self._pending.get(key) == priority:  # else a stale entry of a key queued again as urgent
                del self._pending[key]
                self._active.add(key)
                return key

    def done(self, key: Key) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self.add(key, urgent=self._dirty.pop(key) == 0)

    def __len__(self) -> int:
        return len(self._pending)


class Controller:
    def __init__(self, settings: OperatorSettings, store: Store, applier: Applier) -> None:
        self.settings = settings
        self.store = store
        self.applier = applier
        self.queue = WorkQueue()

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
            log.warning("Skipped invalid ModelDeployment namespace=%s name=%s error=%s", *key, error)
            return
        verdict = check_fit(md.spec)
        wanted = desired(md, self.settings, verdict)
        actions = plan(wanted, self.store.children_of(key), md.metadata.uid)
        applied, deleted, apply_error = await self.applier.execute(md, actions)
        for child in applied:
            self.store.put_child(child)
        for gone in deleted:
            self.store.forget_child(key, (gone.kind, gone.name))
        await self._write_status(md, key, verdict, apply_error)
        if apply_error:
            self.queue.add_after(key, self.settings.retry_seconds)

    def _workload(self, key: Key) -> Manifest | None:
        children = self.store.children_of(key)
        return next((body for (kind, _), body in children.items() if kind in WORKLOAD_KINDS), None)

    async def _write_status(
        self, md: ModelDeployment, key: Key, verdict: Any, apply_error: str | None
    ) -> None:
        observed = Observed(self._workload(key), self.store.pods_of(key), apply_error)
        previous: Manifest = (self.store.deployment(key) or {}).get("status") or {}
        status = compute_status(
            md,
            verdict,
            observed,
            md.spec.parallelism.gpus,
            nodes_per_replica(md),
            endpoint(md, self.settings),
            previous,
            now_rfc3339(),
        )
        if status == previous:
            return
        try:
            result = await self.applier.write_status(md, status)
        except ApiError as error:
            if error.status == 404:
                return  # deleted meanwhile
            raise
        self.store.put_deployment(result)
        for transition in transitions(previous, status):
            log.info(
                "Changed Ready name=%s namespace=%s reason=%s",
                md.metadata.name,
                md.metadata.namespace,
                transition.reason,
            )
            await self.applier.event(md, transition)
