"""Requests in flight, kept in a memory-mapped file so that a killed gateway still bills them.

The journal holds finished requests only. So each dispatched request also holds a fixed-size slot in
`inflight.slots` next to the journal (MAP_SHARED): its identity is written when it is sent to a replica,
and the engine's cumulative usage after every usage report, as plain memory stores (no system call on
the streaming path). The slot is freed right after the request's event is journaled.

The pages of a killed process stay in the kernel's page cache, so at the next start every occupied slot
is a request that a crash cut off: it becomes a `failed` event with the last usage the engine reported,
appended to the journal before the table is cleared. A slot still occupied although its event was
journaled (a kill between the two steps) only yields a duplicate `request_id`, which the ledger skips;
the journal's own event comes first in the journal, so it is the one stored.

Slot layout (little-endian): state u32 (1 = in flight), identity length u32, prompt, cached and
completion tokens (i64), time to first token in ms (f64, NaN: none), last update (f64, Unix seconds),
then the identity as JSON.
"""

from __future__ import annotations

import json
import logging
import math
import mmap
import os
import struct
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from modelplex.billing.contracts import Outcome, UsageEvent
from modelplex.gateway.journal import JournalUnwritable

log = logging.getLogger(__name__)

SLOT_BYTES = 1024
FIRST_SLOTS = 256
HEADER = struct.Struct("<IIqqqdd")
COUNTERS = struct.Struct("<qqqdd")
STATE = struct.Struct("<I")
IN_FLIGHT = 1
IDENTITY_BYTES = SLOT_BYTES - HEADER.size
FILE_NAME = "inflight.slots"


class Tracked(Protocol):
    """What the table needs of a request (a `metering.Meter`)."""

    request_id: str
    model: str
    deployment: str
    replica: str
    started_at: datetime
    slot: int

    @property
    def identity(self) -> dict[str, str]: ...

    def counters(self) -> tuple[int, int, int, float]: ...


class InFlightTable:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._free: list[int] = []
        self._slots = 0
        self._lock = threading.Lock()  # flush runs in a worker thread; never against a closed map
        self.dirty = False  # written to since the last flush

    def open(self) -> list[UsageEvent]:
        """Map the table; return the requests a previous process left in flight (call `clear` after)."""
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        size = os.fstat(self._fd).st_size
        recovered = _read_all(self.path.read_bytes()[: size - size % SLOT_BYTES]) if size else []
        self._resize(max(FIRST_SLOTS, size // SLOT_BYTES))
        return recovered

    def clear(self) -> None:
        """Mark every slot free (after the recovered events are safely journaled)."""
        assert self._map is not None
        self._map[:] = bytes(len(self._map))
        self._map.flush()
        self._free = list(range(self._slots - 1, -1, -1))

    def track(self, request: Tracked) -> None:
        """Write (or rewrite, after a retry elsewhere) the request's identity into its slot."""
        identity = orjson.dumps(request.identity)
        if len(identity) > IDENTITY_BYTES:
            log.warning("Skipped tracking request_id=%s bytes=%d", request.request_id, len(identity))
            return
        if request.slot < 0:
            request.slot = self._claim()
        offset = request.slot * SLOT_BYTES
        assert self._map is not None
        self._map[offset + HEADER.size : offset + HEADER.size + len(identity)] = identity
        # The state word goes last: a slot is never seen in flight with half its identity.
        HEADER.pack_into(self._map, offset, IN_FLIGHT, len(identity), *request.counters(), time.time())
        self.dirty = True

    def update(self, request: Tracked) -> None:
        if request.slot >= 0 and self._map is not None:
            COUNTERS.pack_into(self._map, request.slot * SLOT_BYTES + 8, *request.counters(), time.time())
            self.dirty = True

    def release(self, request: Tracked) -> None:
        if request.slot >= 0 and self._map is not None:
            STATE.pack_into(self._map, request.slot * SLOT_BYTES, 0)
            self._free.append(request.slot)
            request.slot = -1
            self.dirty = True

    def flush(self) -> None:
        """Write dirty pages to disk (only a machine crash needs this; a killed process loses nothing)."""
        with self._lock:
            self.dirty = False  # before the flush: a store during it is flushed next time
            if self._map is not None:
                self._map.flush()

    def close(self) -> None:
        with self._lock:
            if self._map is not None:
                self._map.flush()
                self._map.close()
                self._map = None
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _claim(self) -> int:
        if not self._free:
            self._resize(self._slots * 2)
        return self._free.pop()

    def _resize(self, slots: int) -> None:
        # Blocks allocated up front: a store into a hole of a mapped file on a full disk is a SIGBUS
        # that kills the process; a failed allocation here is an error the gateway can answer.
        try:
            os.posix_fallocate(self._fd, 0, slots * SLOT_BYTES)
        except OSError as exc:
            raise JournalUnwritable(f"in-flight table: {exc}") from exc
        with self._lock:
            if self._map is not None:
                self._map.close()
            self._map = mmap.mmap(self._fd, slots * SLOT_BYTES)
        self._free = list(range(slots - 1, self._slots - 1, -1)) + self._free
        self._slots = slots


def _read_all(data: bytes) -> list[UsageEvent]:
    events = []
    for offset in range(0, len(data), SLOT_BYTES):
        state, length, *counters = HEADER.unpack_from(data, offset)
        if state != IN_FLIGHT:
            continue
        start = offset + HEADER.size
        try:
            identity = json.loads(data[start : start + length])
            events.append(_event(identity, *counters))
        except ValueError:
            log.error("Skipped unreadable in-flight slot offset=%d", offset)
    return events


def _event(
    identity: dict[str, Any], prompt: int, cached: int, completion: int, ttft_ms: float, updated: float
) -> UsageEvent:
    started = datetime.fromisoformat(identity["started_at"])
    finished = max(started, datetime.fromtimestamp(updated, UTC))
    return UsageEvent(
        request_id=identity["request_id"],
        tenant_id=identity["tenant_id"],
        key_id=identity["key_id"],
        model=identity["model"],
        deployment=identity["deployment"],
        replica=identity["replica"],
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        outcome=Outcome.FAILED,
        started_at=started,
        finished_at=finished,
        ttft_ms=None if math.isnan(ttft_ms) else ttft_ms,
        duration_ms=(finished - started) / timedelta(milliseconds=1),
    )
