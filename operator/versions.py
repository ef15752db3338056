"""Which of two copies of an object is newer, so that an answer that left the API server before a
newer watch event cannot overwrite that event in the operator's store.

The store is fed from two sides: watch events, in order, and the answers to the operator's own
writes (apply, status), which arrive whenever their coroutine resumes. A reconcile that applies a
Deployment, a Service and a PodDisruptionBudget holds the Deployment's answer until all three are
back; meanwhile the Deployment controller may already have written its status and the watch
delivered it. Kept blindly, the older answer would stay in the store for good: a zero-replica
Deployment never changes again, and the resync reads the same store.

Kubernetes defines the resourceVersions of one resource as integers that compare (KEP-5504, stable
in 1.35). A version that is not such an integer cannot be ordered; the newcomer wins, as before.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Longer than any request may be in flight (the client's timeout is 30 s by default): a deletion is
# remembered that long, so a stale answer cannot bring back what was deleted while it travelled.
REMEMBER_DELETIONS_SECONDS = 300.0


def resource_version(body: dict[str, Any]) -> str | None:
    version = (body.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


def _ordinal(version: str | None) -> int | None:
    if not version or not version.isdigit() or version.startswith("0"):
        return None
    return int(version)


def supersedes(incoming: str | None, held: str | None) -> bool:
    """Whether a copy at resourceVersion `incoming` may replace one held at `held`."""
    new, old = _ordinal(incoming), _ordinal(held)
    return new is None or old is None or new >= old


class Versions(Generic[K]):
    """The resourceVersion held for each key, and, for a while, the one each deleted key died at."""

    def __init__(
        self,
        remember_deletions_seconds: float = REMEMBER_DELETIONS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._held: dict[K, str | None] = {}
        self._deleted: OrderedDict[K, tuple[str | None, float]] = OrderedDict()
        self._remember = remember_deletions_seconds
        self._clock = clock

    def admit(self, key: K, version: str | None) -> bool:
        """True (and `version` is now held) unless a newer copy is held or was deleted."""
        self._expire()
        held = self._held[key] if key in self._held else self._deleted.get(key, (None, 0.0))[0]
        if not supersedes(version, held):
            return False
        self._held[key] = version
        self._deleted.pop(key, None)
        return True

    def delete(self, key: K, version: str | None) -> None:
        self._held.pop(key, None)
        self._deleted.pop(key, None)
        self._deleted[key] = (version, self._clock())
        self._expire()

    def forget(self, key: K) -> None:
        """Drops `key` with no memory of it (its owner is gone, or we deleted it ourselves)."""
        self._held.pop(key, None)
        self._deleted.pop(key, None)

    def _expire(self) -> None:
        cutoff = self._clock() - self._remember
        while self._deleted:
            key, (_, when) = next(iter(self._deleted.items()))
            if when > cutoff:
                break
            del self._deleted[key]
