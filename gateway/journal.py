"""A crash-safe local journal of usage events: append-only segment files, one JSON line per event.

Each event is written with one `write` as soon as its request ends (so a killed process loses nothing
the kernel has), and a background thread fsyncs in small groups (so a machine crash loses at most one
fsync interval). A thread rather than an event-loop task: fsync blocks, and handing it to an executor
every few milliseconds costs the serving loop a wake-up each time. The thread sleeps until an append
makes the journal dirty, so an idle gateway never wakes it. While appends keep coming it does not
sleep on the event at all but on its interval, so a busy gateway wakes it once per interval (by the
clock) and never once per request: on a one-core gateway, each wake-up is a thread switch and a GIL
hand-over paid by the serving thread. A cursor file remembers how far
the shipper got; everything after it is replayed after a restart, and the ledger ignores duplicate
request ids. Requests still in flight are not here: see `inflight.py`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from modelplex.billing.contracts import UsageEvent

log = logging.getLogger(__name__)

SEGMENT_GLOB = "segment-*.jsonl"


@dataclass(frozen=True, slots=True, order=True)
class Position:
    segment: int
    offset: int


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"segment-{number:010d}.jsonl"


def segment_numbers(directory: Path) -> list[int]:
    return sorted(int(p.stem.split("-", 1)[1]) for p in directory.glob(SEGMENT_GLOB))


class JournalUnwritable(Exception):
    """The journal (or the in-flight table beside it) cannot take more: the disk is full or failing."""


class Journal:
    def __init__(self, directory: Path, segment_bytes: int, fsync_interval: float) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._fsync_interval = fsync_interval
        self._fd = -1
        self._lock_fd = -1
        self.segment = 0
        self._size = 0
        self._dirty = False
        self.appended = 0
        self._lock = threading.Lock()  # the fsync thread never syncs a descriptor being replaced
        self._stop = False
        self._written = threading.Event()  # an append after a quiet interval: the thread is wanted
        self._woken = False  # the event was set since the thread last looked
        self._syncer: threading.Thread | None = None

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"journal {self.directory} is in use by another gateway process") from None
        numbers = segment_numbers(self.directory)
        self.segment = numbers[-1] if numbers else 1
        path = segment_path(self.directory, self.segment)
        _drop_torn_tail(path)
        self._open_segment(path)
        self._stop = False
        self._written.clear()
        self._woken = False
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-fsync", daemon=True)
        self._syncer.start()

    def append(self, event: UsageEvent) -> None:
        """One whole line, or nothing: a failed or short write (a full disk) is cut back off, so what
        was journaled before stays readable, and raises JournalUnwritable."""
        # orjson on the fields, the bytes pydantic would write at a tenth of its cost; `read_events`
        # validates them back.
        line = orjson.dumps(event.__dict__, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z)
        try:
            written = os.write(self._fd, line)
        except OSError as exc:
            raise JournalUnwritable(str(exc)) from exc
        if written != len(line):
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise JournalUnwritable(f"short write: {written} of {len(line)} bytes")
        self._size += len(line)
        self._dirty = True
        self.appended += 1
        if not self._woken:
            self._woken = True
            self._written.set()
        if self._size >= self._segment_bytes:
            self._rotate()

    def end(self) -> Position:
        return Position(self.segment, self._size)

    def sync(self) -> None:
        with self._lock:
            if self._dirty and self._fd >= 0:
                self._dirty = False  # before the fsync: a write during it is synced next time
                os.fsync(self._fd)

    def _sync_loop(self) -> None:
        while not self._stop:
            self._written.wait()
            while not self._stop:
                time.sleep(self._fsync_interval)  # what else is appended meanwhile shares this fsync
                self._written.clear()
                self._woken = False  # before looking: an append from now on sets the event again
                if not self._dirty:
                    break  # quiet: wait for the next append
                try:
                    self.sync()
                except OSError as exc:
                    log.error("Failed syncing usage journal error=%s", exc)

    def close(self) -> None:
        self._stop = True
        self._written.set()
        if self._syncer is not None:
            self._syncer.join()
            self._syncer = None
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _rotate(self) -> None:
        with self._lock:
            self._dirty = False
            os.fsync(self._fd)
            os.close(self._fd)
            self.segment += 1
            self._open_segment(segment_path(self.directory, self.segment))
        log.info("Rotated usage journal segment=%d", self.segment)

    def _open_segment(self, path: Path) -> None:
        self._fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        _fsync_dir(self.directory)


def _drop_torn_tail(path: Path) -> None:
    """A crash can leave half a line at the end of the last segment: cut it off."""
    if not path.exists():
        return
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):
        os.truncate(path, keep)
        log.warning("Truncated torn journal tail path=%s bytes=%d", path, len(data) - keep)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Cursor:
    """How far the shipper got, saved atomically (write, fsync, rename)."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / "cursor.json"

    def load(self) -> Position:
        try:
            data = json.loads(self._path.read_text())
            return Position(int(data["segment"]), int(data["offset"]))
        except FileNotFoundError:
            numbers = segment_numbers(self._path.parent)
            return Position(numbers[0] if numbers else 1, 0)

    def save(self, position: Position) -> None:
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("w") as handle:
            json.dump({"segment": position.segment, "offset": position.offset}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self._path)


def backlog_bytes(directory: Path, start: Position) -> int:
    total = -start.offset
    for number in segment_numbers(directory):
        if number >= start.segment:
            total += segment_path(directory, number).stat().st_size
    return max(0, total)


def read_events(directory: Path, start: Position, limit: int) -> tuple[list[UsageEvent], Position]:
    """Up to `limit` whole events of the segment at `start`, and the position after them."""
    path = segment_path(directory, start.segment)
    try:
        with path.open("rb") as handle:
            handle.seek(start.offset)
            data = handle.read(limit * 1024)
    except FileNotFoundError:
        return [], start
    events: list[UsageEvent] = []
    offset = 0
    while len(events) < limit and (end := data.find(b"\n", offset)) != -1:
        line = data[offset:end]
        offset = end + 1
        if not line.strip():
            continue
        try:
            events.append(UsageEvent.model_validate_json(line))
        except ValueError:
            log.error("Skipped unreadable journal line segment=%d offset=%d", start.segment, start.offset)
    return events, Position(start.segment, start.offset + offset)
