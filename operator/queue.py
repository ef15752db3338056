"""The work queue of ModelDeployment keys: de-duplicated, one reconcile per key at a time, urgent first."""

from __future__ import annotations

import asyncio

from modelplex.operator.store import Key


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
