"""Least-load: the replica with the fewest requests (own in-flight and scraped engine queues)."""

from __future__ import annotations

from modelplex.gateway.routing.base import Endpoint, RouteRequest, Snapshot, least_loaded


class LeastLoad:
    async def choose(self, request: RouteRequest, snapshot: Snapshot) -> Endpoint:
        return least_loaded(snapshot.available)
