"""Round-robin: each request to the next available replica."""

from __future__ import annotations

from modelplex.gateway.routing.base import Endpoint, RouteRequest, Snapshot


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    async def choose(self, request: RouteRequest, snapshot: Snapshot) -> Endpoint:
        candidates = sorted(snapshot.available, key=lambda e: e.endpoint.id)
        choice = candidates[self._next % len(candidates)]
        self._next += 1
        return choice.endpoint
