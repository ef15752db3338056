"""Session affinity: requests with the same `x-session-id` header go to the same replica (bounded load);
requests without one are routed by prefix affinity."""

from __future__ import annotations

from modelplex.gateway.routing.base import Endpoint, RouteRequest, Snapshot
from modelplex.gateway.routing.hashring import RingCache
from modelplex.gateway.routing.prefix_affinity import affine


class SessionAffinity:
    def __init__(self, bounded_load_factor: float = 1.25) -> None:
        self._factor = bounded_load_factor
        self._rings = RingCache()

    async def choose(self, request: RouteRequest, snapshot: Snapshot) -> Endpoint:
        key = f"session:{request.session_id}" if request.session_id else request.prefix
        return affine(key, snapshot, self._rings, self._factor)
