"""The local stack's capacity recording: which workers serve, written straight into the ledger.

Each worker is one replica on product `cpu` with one "GPU" (the local CPU profile), so the local
stack has GPU-hours, cost and idle share like a cluster. The runtime reports the complete set of
ready workers when it changes (or its autoscaler decides) and at least every HEARTBEAT, well within
the ledger's CONTINUOUS window, with the autoscaler's decisions and last readings as the operator
reports them; a stack that stopped without reporting has its intervals closed when it starts again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from modelplex.billing.capacity import Observation, ReadyReplica, record_observation
from modelplex.billing.errors import LedgerError
from modelplex.billing.gpu_costs import LOCAL_CPU_PRODUCT
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import utcnow
from modelplex.billing.scaling import ScalingReport
from modelplex.billing.settings import BillingSettings
from modelplex.local.workers import WorkerPool

log = logging.getLogger(__name__)
SOURCE = "local"
NAMESPACE = "local"
HEARTBEAT = 30.0  # seconds


def ready_replicas(pool: WorkerPool) -> list[ReadyReplica]:
    return [
        ReadyReplica(
            namespace=NAMESPACE,
            deployment=state.template.deployment,
            model=state.template.served_name,
            replica=worker.id,
            gpus=1,
            gpu_product=LOCAL_CPU_PRODUCT,
            ready_since=worker.ready_since,
        )
        for state in pool.deployments.values()
        for worker in state.workers
        if worker.ready and worker.ready_since is not None
    ]


class LocalCapacity:
    """Reports the pool's ready workers to the ledger (opened on first use, closed by `close`)."""

    def __init__(self, billing: BillingSettings) -> None:
        self._billing = billing.model_copy(update={"auto_migrate": False})  # `up` migrated it already
        self._ledger: Ledger | None = None
        self._last: tuple[object, ...] | None = None
        self._reported_at = 0.0
        # the autoscaler's decisions and last readings (set by the stack; ScalingReport JSON)
        self.scaling: Callable[[], Iterable[dict[str, Any]]] = list

    async def observe(self, pool: WorkerPool) -> None:
        ready = ready_replicas(pool)
        scaling = [ScalingReport.model_validate(report) for report in self.scaling()]
        decided = tuple(
            (report.deployment, report.desired_replicas, [d.time for d in report.decisions[-1:]])
            for report in scaling
        )
        state = (tuple(sorted((r.replica, r.ready_since) for r in ready)), decided)
        if state == self._last and time.monotonic() - self._reported_at < HEARTBEAT:
            return
        try:
            if self._ledger is None:
                self._ledger = await Ledger.connect(self._billing)
            report = Observation(source=SOURCE, observed_at=utcnow(), ready=ready, scaling=scaling)
            await record_observation(self._ledger, report)
        except (SQLAlchemyError, LedgerError, OSError) as error:
            log.warning("Failed recording capacity error=%s", error)  # retried on the next poll
            return
        self._last, self._reported_at = state, time.monotonic()

    async def close(self, pool: WorkerPool) -> None:
        """Report what is still ready (nothing, once the workers are stopped), then close the ledger."""
        self._last = None
        await self.observe(pool)
        if self._ledger is not None:
            await self._ledger.close()
            self._ledger = None
