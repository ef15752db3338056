"""When a shared store (Redis) is unreachable: stop asking it for a while, and say so once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Outage:
    def __init__(self, what: str, retry_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until: float | None = None  # None: the shared store is in use

    @property
    def degraded(self) -> bool:
        return self._down_until is not None

    def should_try(self) -> bool:
        return self._down_until is None or self._clock() >= self._down_until

    def failed(self, error: Exception) -> None:
        if self._down_until is None:
            log.error(
                "Failed reaching shared %s error=%s; enforcing this replica's own, retry_in=%.0fs",
                self._what,
                type(error).__name__,
                self._retry_seconds,
            )
        self._down_until = self._clock() + self._retry_seconds

    def recovered(self) -> None:
        if self._down_until is not None:
            log.warning("Reconnected to shared %s", self._what)
            self._down_until = None
