"""Ships journaled usage to the ledger in batches. A failing sink delays shipping, never serving."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from modelplex.billing.contracts import UsageSink
from modelplex.gateway.journal import Cursor, Journal, Position, backlog_bytes, read_events, segment_path

log = logging.getLogger(__name__)


class Shipper:
    def __init__(
        self,
        journal: Journal,
        sink: UsageSink,
        batch_size: int,
        interval: float,
        backoff_max: float,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._journal = journal
        self._sink = sink
        self._batch = batch_size
        self._interval = interval
        self._backoff_max = backoff_max
        self._on_failure = on_failure  # each failed shipment (the ledger unreachable, or refusing)
        self._cursor = Cursor(journal.directory)
        self.position = self._cursor.load()
        self.shipped = 0
        self.backlog = 0

    async def run(self) -> None:
        delay = self._interval
        while True:
            try:
                progressed = await self.ship_once()
                delay = self._interval
            except Exception as exc:  # any sink failure: keep the events, try again later
                log.warning("Failed to ship usage error=%s retry_in_s=%.1f", type(exc).__name__, delay)
                self._on_failure()
                # What waits keeps growing while the ledger is away: say so (the backlog alert reads it).
                self.backlog = backlog_bytes(self._journal.directory, self.position)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            if not progressed:
                await asyncio.sleep(self._interval)

    async def ship_once(self) -> bool:
        """Ship one batch, or step past a finished segment. False when there was nothing to do."""
        events, after = read_events(self._journal.directory, self.position, self._batch)
        if events:
            new = await self._sink.ingest(events)
            await self._advance(after)
            self.shipped += len(events)
            log.debug("Shipped usage events=%d new=%d", len(events), new)
            return True
        if after != self.position:  # only unreadable lines
            await self._advance(after)
            return True
        if self.position.segment < self._journal.segment:
            finished = segment_path(self._journal.directory, self.position.segment)
            await self._advance(Position(self.position.segment + 1, 0))
            finished.unlink(missing_ok=True)
            return True
        self.backlog = backlog_bytes(self._journal.directory, self.position)
        return False

    async def drain(self, seconds: float) -> bool:
        """Ship what is left, for at most `seconds`; True when nothing is left."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if not await self.ship_once():
                    return True
            except Exception as exc:
                log.warning("Failed to ship usage at shutdown error=%s", type(exc).__name__)
                self._on_failure()
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return False

    async def _advance(self, position: Position) -> None:
        await asyncio.to_thread(self._cursor.save, position)
        self.position = position
        self.backlog = backlog_bytes(self._journal.directory, position)
