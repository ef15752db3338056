"""A small in-process TTL cache: answers for a few seconds, then asks again."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries live `ttl` seconds; the oldest are dropped beyond `max_entries`."""

    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) while fresh; (False, None) when missing or expired."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def last(self, key: K) -> tuple[bool, V | None]:
        """(True, value) for the last value put, however old; (False, None) if there is none.

        Expired entries stay (within `max_entries`) for this: the last known answer is better than
        none while the source of truth is unreachable.
        """
        entry = self._entries.get(key)
        return (False, None) if entry is None else (True, entry[1])

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
