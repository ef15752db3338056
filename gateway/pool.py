"""The replicas of every model, their load and health, and the bounded per-model wait queue.

`acquire` picks a replica with the model's routing policy among the healthy, ready, non-saturated ones;
when there is none (all saturated, or zero ready replicas) the request waits in the model's FIFO queue
until a slot frees, the catalog changes or its deadline passes (503 with Retry-After). A model with
no replica at all (scaled to zero, or still starting) holds requests for a cold start
(`cold_start_timeout_seconds`): the autoscaler reads the queue's depth and brings a replica, and the
Retry-After of a request that still times out estimates the time to ready from the cold starts seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from modelplex.gateway.discovery.base import Catalog, ModelSpec
from modelplex.gateway.errors import no_capacity
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.routing.base import Endpoint, EndpointLoad, RouteRequest, RoutingPolicy, Snapshot
from modelplex.gateway.routing.registry import make_policy
from modelplex.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Replica:
    model: str
    endpoint: Endpoint
    max_in_flight: int
    in_flight: int = 0
    failures: int = 0  # consecutive
    ejected: bool = False
    others: int = 0  # the engine's scraped running + waiting beyond this gateway's in-flight then
    kv_cache_usage: float = 0.0

    def load(self) -> EndpointLoad:
        return EndpointLoad(self.endpoint, self.in_flight, self.others, self.kv_cache_usage)


@dataclass(slots=True)
class ModelState:
    spec: ModelSpec
    policy: RoutingPolicy
    replicas: dict[str, Replica] = field(default_factory=dict)

    def snapshot(self, exclude: frozenset[str]) -> Snapshot:
        members = tuple(r.load() for r in self.replicas.values() if not r.ejected)
        available = tuple(
            m
            for m in members
            if m.in_flight < self.replicas[m.endpoint.id].max_in_flight and m.endpoint.id not in exclude
        )
        return Snapshot(members, available)


class ColdStarts:
    """How long a model without replicas takes to get one, measured from the first request held for it
    to the catalog that brings a replica; an exponential average per model."""

    def __init__(self, estimate_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._default = estimate_seconds
        self._clock = clock
        self._since: dict[str, float] = {}  # model -> when a request first waited for a replica
        self._seconds: dict[str, float] = {}

    def waiting(self, model: str) -> None:
        self._since.setdefault(model, self._clock())

    def observe(self, model: str, has_replicas: bool) -> None:
        since = self._since.pop(model, None) if has_replicas else None
        if since is not None:
            took = self._clock() - since
            before = self._seconds.get(model)
            self._seconds[model] = took if before is None else 0.5 * before + 0.5 * took

    def remaining(self, model: str) -> float:
        """Seconds until a replica is likely up, for Retry-After."""
        expected = self._seconds.get(model, self._default)
        since = self._since.get(model)
        return max(1.0, expected - (self._clock() - since)) if since is not None else expected


@dataclass(frozen=True, slots=True)
class Lease:
    replica: Replica


class Pool:
    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self.models: dict[str, ModelState] = {}
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self.ready = asyncio.Event()  # set once the first catalog arrived
        self.cold_starts = ColdStarts(settings.cold_start_estimate_seconds)

    def spec(self, model: str) -> ModelSpec | None:
        state = self.models.get(model)
        return state.spec if state else None

    async def update(self, catalog: Catalog) -> None:
        models: dict[str, ModelState] = {}
        for spec in catalog.models:
            models[spec.name] = self._model_state(spec, self.models.get(spec.name))
        self.models = models
        for name, state in models.items():
            self.cold_starts.observe(name, has_replicas=bool(state.replicas))
        self.ready.set()
        for name in models:
            self._wake(name)

    def replicas(self) -> list[Replica]:
        return [r for state in self.models.values() for r in state.replicas.values()]

    async def acquire(
        self, model: str, request: RouteRequest, exclude: frozenset[str] = frozenset(), wait: bool = True
    ) -> Lease:
        queue = self._queues.setdefault(model, deque())
        if not queue:
            lease = await self._try(model, request, exclude)
            if lease is not None:
                return lease
        if not wait or len(queue) >= self._settings.queue_max_size:
            raise no_capacity(model, self._settings.retry_after_seconds)
        return await self._wait(model, request, exclude, queue)

    def release(self, lease: Lease, failed: bool | None) -> None:
        """`failed`: True counts towards ejection, False resets the count, None (client gone) neither."""
        replica = lease.replica
        replica.in_flight -= 1
        if failed:
            self._failed(replica)
        elif failed is False:
            replica.failures = 0
        self._wake(replica.model)

    def readmit(self, replica: Replica) -> None:
        replica.failures = 0
        replica.ejected = False
        self._metrics.replica_up.labels(replica.model, replica.endpoint.id).set(1)
        log.info("Readmitted replica model=%s replica=%s", replica.model, replica.endpoint.id)
        self._wake(replica.model)

    def _failed(self, replica: Replica) -> None:
        replica.failures += 1
        if not replica.ejected and replica.failures >= self._settings.eject_after_failures:
            replica.ejected = True
            self._metrics.replica_up.labels(replica.model, replica.endpoint.id).set(0)
            log.warning(
                "Ejected replica model=%s replica=%s failures=%d",
                replica.model,
                replica.endpoint.id,
                replica.failures,
            )

    async def _wait(
        self, model: str, request: RouteRequest, exclude: frozenset[str], queue: deque[asyncio.Future[None]]
    ) -> Lease:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        queue.append(future)
        self._metrics.queue_depth.labels(model).set(len(queue))
        lease: Lease | None = None
        state = self.models.get(model)
        cold = state is not None and not state.replicas
        if cold:
            self.cold_starts.waiting(model)
        deadline = self._settings.cold_start_timeout_seconds if cold else self._settings.queue_timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                while True:
                    await future
                    lease = await self._try(model, request, exclude)
                    if lease is not None:
                        if queue:
                            self._wake(model)  # more capacity may have appeared at once
                        return lease
                    future = loop.create_future()
                    queue.appendleft(future)
        except TimeoutError:
            state = self.models.get(model)
            if state is not None and not state.replicas:
                raise no_capacity(model, self.cold_starts.remaining(model)) from None
            raise no_capacity(model, self._settings.retry_after_seconds) from None
        finally:
            if not future.done():
                queue.remove(future)
            elif lease is None:
                self._wake(model)  # woken but leaving: pass the wake-up on
            self._metrics.queue_depth.labels(model).set(len(queue))

    async def _try(self, model: str, request: RouteRequest, exclude: frozenset[str]) -> Lease | None:
        state = self.models.get(model)
        if state is None:
            return None
        snapshot = state.snapshot(exclude)
        if not snapshot.available:
            return None
        endpoint = await state.policy.choose(request, snapshot)
        replica = state.replicas[endpoint.id]
        replica.in_flight += 1
        return Lease(replica)

    def _wake(self, model: str) -> None:
        queue = self._queues.get(model)
        while queue:
            future = queue.popleft()
            if not future.done():
                future.set_result(None)
                return

    def _model_state(self, spec: ModelSpec, old: ModelState | None) -> ModelState:
        keep_policy = old is not None and old.spec.routing == spec.routing
        policy = (
            old.policy
            if old is not None and keep_policy
            else make_policy(spec.routing, self._settings.bounded_load_factor)
        )
        limit = spec.max_in_flight_per_replica or self._settings.replica_max_in_flight
        state = ModelState(spec, policy)
        for endpoint_spec in spec.endpoints:
            if not endpoint_spec.ready:
                continue
            endpoint = Endpoint(endpoint_spec.name, endpoint_spec.url.rstrip("/"))
            previous = old.replicas.get(endpoint.id) if old else None
            if previous is not None and previous.endpoint == endpoint:
                previous.max_in_flight = limit
                state.replicas[endpoint.id] = previous
            else:
                replica = state.replicas[endpoint.id] = Replica(spec.name, endpoint, limit)
                self._metrics.replica_up.labels(spec.name, endpoint.id).set(1)
                # Read when /metrics is scraped, not written on every request.
                in_flight = self._metrics.in_flight.labels(spec.name, endpoint.id)
                in_flight.set_function(partial(_in_flight, replica))
        return state


def _in_flight(replica: Replica) -> float:
    return replica.in_flight
