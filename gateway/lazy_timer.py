"""One timer for a deadline that keeps moving (a connection's next timeout): armed for the earliest
time asked, and when it fires it asks for the deadline now, acting if it has passed and re-arming
if it moved on. A deadline pushed later costs an assignment, not a timer rescheduled each time."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable


class LazyTimer:
    __slots__ = ("_due", "_expired", "_handle", "_loop", "_when")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, due: Callable[[], float], expired: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._due = due  # the deadline now (math.inf: none)
        self._expired = expired
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf

    def aim(self, when: float) -> None:
        """Fire no later than `when`."""
        if when < self._when:
            self.cancel()
            self._when = when
            self._handle = self._loop.call_at(when, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = math.inf

    def _fire(self) -> None:
        self._handle, self._when = None, math.inf
        due = self._due()
        if due == math.inf:
            return
        if self._loop.time() >= due:
            self._expired()
        else:
            self.aim(due)
