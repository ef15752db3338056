"""A consistent-hash ring with virtual nodes, and the bounded-load check that goes with it."""

from __future__ import annotations

import bisect
import hashlib
import math

from modelplex.gateway.routing.base import EndpointLoad

VIRTUAL_NODES = 64


def stable_hash(text: str) -> int:
    """Same value in every process and gateway replica (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    def __init__(self, members: frozenset[str]) -> None:
        self.members = members
        points = sorted((stable_hash(f"{m}#{i}"), m) for m in members for i in range(VIRTUAL_NODES))
        self._keys = [p[0] for p in points]
        self._owners = [p[1] for p in points]

    def owner(self, key: str) -> str:
        index = bisect.bisect(self._keys, stable_hash(key)) % len(self._keys)
        return self._owners[index]


class RingCache:
    """Rebuilds the ring only when the set of members changes."""

    def __init__(self) -> None:
        self._ring: HashRing | None = None

    def ring(self, members: tuple[EndpointLoad, ...]) -> HashRing:
        ids = frozenset(m.endpoint.id for m in members)
        if self._ring is None or self._ring.members != ids:
            self._ring = HashRing(ids)
        return self._ring


def load_bound(members: tuple[EndpointLoad, ...], factor: float) -> float:
    """Consistent hashing with bounded loads: at most `factor` x the mean load (counting this request)."""
    total = sum(m.load for m in members)
    return math.ceil(factor * (total + 1) / len(members))
