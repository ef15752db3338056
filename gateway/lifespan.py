"""The gateway's lifespan: start the journal, discovery and background tasks; drain and stop them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

import aiohttp

from modelplex.billing.contracts import UsageSink
from modelplex.gateway.asgi import Receive, Send
from modelplex.gateway.discovery.base import DiscoverySource
from modelplex.gateway.health import probe_session, run_prober, run_scraper
from modelplex.gateway.inflight import InFlightTable
from modelplex.gateway.journal import Journal
from modelplex.gateway.metering import Recorder
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.pool import Pool
from modelplex.gateway.proxy import Proxy
from modelplex.gateway.settings import GatewaySettings
from modelplex.gateway.shipper import Shipper
from modelplex.gateway.upstream import Upstream

log = logging.getLogger(__name__)

FIRST_CATALOG_SECONDS = 10.0
SHIP_AT_SHUTDOWN_SECONDS = 5.0
SHIP_AT_START_SECONDS = 5.0
INFLIGHT_FLUSH_SECONDS = 1.0


class Upkeep(Protocol):
    """A limits or budgets store: background work while serving (lease renewal), closed at the end."""

    async def run(self) -> None: ...

    async def close(self) -> None: ...


class Service(Protocol):
    """Something opened before the gateway serves and closed after it stopped (e.g. the ledger)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Lifespan:
    def __init__(
        self,
        settings: GatewaySettings,
        pool: Pool,
        journal: Journal,
        sink: UsageSink | None,
        discovery: DiscoverySource,
        stores: Sequence[Upkeep],
        metrics: GatewayMetrics,
        services: Sequence[Service] = (),
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._journal = journal
        self._inflight = InFlightTable(journal.directory)
        self._sink = sink
        self._discovery = discovery
        self._stores = stores
        self._metrics = metrics
        self._services = services
        self._started: list[Service] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None  # health probes and /metrics scrapes
        self._upstream: Upstream | None = None
        self._proxy: Proxy | None = None
        self.recorder: Recorder | None = None
        self.shipper: Shipper | None = None
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()

    @property
    def proxy(self) -> Proxy:
        assert self._proxy is not None, "the gateway has not started"
        return self._proxy

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    log.exception("Failed starting the gateway")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        for service in self._services:
            await service.start()
            self._started.append(service)
        self._journal.open()
        recovered = self._recover()
        self._session = probe_session(self._settings)
        self._upstream = Upstream(
            self._settings.connect_timeout_seconds, self._settings.idle_stream_timeout_seconds
        )
        self.recorder = recorder = Recorder(self._journal, self._inflight, self._metrics)
        self._proxy = Proxy(self._settings, self._upstream, self._pool, recorder, self._metrics)
        self._spawn("discovery", lambda: self._discovery.run(self._pool.update))
        self._spawn("inflight-flush", self._flush_inflight)
        for index, store in enumerate(self._stores):
            self._spawn(f"store-{index}", store.run)
        if self._sink is not None:
            await self._start_shipper(self._sink, recovered)
        self._spawn(
            "prober", lambda: run_prober(self._pool, self._session_(), self._settings.probe_interval_seconds)
        )
        if self._settings.scrape_interval_seconds > 0:
            interval = self._settings.scrape_interval_seconds
            self._spawn("scraper", lambda: run_scraper(self._pool, self._session_(), interval))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_CATALOG_SECONDS):
                await self._pool.ready.wait()
        # What exists now lives as long as the process: keep it out of every later collection, so
        # the cyclic collector's full passes stay short (they are latency spikes for every request).
        gc.collect()
        gc.freeze()
        log.info("Started gateway models=%d journal=%s", len(self._pool.models), self._journal.directory)

    def _recover(self) -> int:
        """Journal the requests a killed process left in flight, then forget them; returns how many."""
        recovered = self._inflight.open()
        for event in recovered:
            self._journal.append(event)
        self._journal.sync()
        self._inflight.clear()
        if recovered:
            tokens = sum(e.prompt_tokens + e.completion_tokens for e in recovered)
            log.warning("Recovered requests cut off by a crash requests=%d tokens=%d", len(recovered), tokens)
        return len(recovered)

    async def _start_shipper(self, sink: UsageSink, recovered: int) -> None:
        shipper = self.shipper = Shipper(
            self._journal,
            sink,
            self._settings.ship_batch_size,
            self._settings.ship_interval_seconds,
            self._settings.ship_backoff_max_seconds,
            on_failure=self._metrics.ledger_failures.labels("ship").inc,
        )
        self._metrics.watch_journal(lambda: shipper.backlog, lambda: shipper.shipped)
        if recovered:
            # Budgets start from the ledger's reading: ship what the crash cut off before serving, so
            # that the reading includes it (for at most a few seconds; later it is caught up anyway).
            await shipper.drain(SHIP_AT_START_SECONDS)
        self._spawn("shipper", shipper.run)

    async def _flush_inflight(self) -> None:
        while True:
            await asyncio.sleep(INFLIGHT_FLUSH_SECONDS)
            if self.recorder is not None and self.recorder.unwritable:
                self.recorder.retry()
            if self._inflight.dirty:
                await asyncio.to_thread(self._inflight.flush)

    @property
    def journal_unwritable(self) -> bool:
        return self.recorder is not None and self.recorder.unwritable

    async def stop(self) -> None:
        self.draining = True
        if self.in_flight:
            log.info("Draining gateway in_flight=%d", self.in_flight)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.drain_timeout_seconds):
                    await self._idle.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.shipper is not None:
            await self.shipper.drain(SHIP_AT_SHUTDOWN_SECONDS)
        self._inflight.close()
        self._journal.close()
        if self._upstream is not None:
            await self._upstream.close()
        if self._session is not None:
            await self._session.close()
        for store in self._stores:
            await store.close()
        for service in reversed(self._started):
            await service.stop()
        log.info("Stopped gateway in_flight=%d", self.in_flight)

    def _session_(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    def _spawn(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._tasks.append(asyncio.create_task(_supervised(name, work), name=f"gateway-{name}"))


async def _supervised(name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Background work must not die quietly: log and restart it."""
    while True:
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Failed background task name=%s; restarting", name)
            await asyncio.sleep(1.0)
