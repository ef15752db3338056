"""Prefix affinity: requests sharing a prompt prefix go to the same replica (its prefix cache is warm),
unless that replica is over the load bound; then least-load."""

from __future__ import annotations

from modelplex.gateway.routing.base import Endpoint, EndpointLoad, RouteRequest, Snapshot, least_loaded
from modelplex.gateway.routing.hashring import RingCache, load_bound


class PrefixAffinity:
    def __init__(self, bounded_load_factor: float = 1.25) -> None:
        self._factor = bounded_load_factor
        self._rings = RingCache()

    async def choose(self, request: RouteRequest, snapshot: Snapshot) -> Endpoint:
        return affine(request.prefix, snapshot, self._rings, self._factor)


def affine(key: str, snapshot: Snapshot, rings: RingCache, factor: float) -> Endpoint:
    if len(snapshot.members) == 1 and snapshot.available:
        return snapshot.available[0].endpoint  # one replica: nothing to choose, no hash to compute
    owner = rings.ring(snapshot.members).owner(key)
    chosen = _find(snapshot.available, owner)
    if chosen is not None and chosen.load < load_bound(snapshot.members, factor):
        return chosen.endpoint
    return least_loaded(snapshot.available)


def _find(candidates: tuple[EndpointLoad, ...], endpoint_id: str) -> EndpointLoad | None:
    for candidate in candidates:
        if candidate.endpoint.id == endpoint_id:
            return candidate
    return None
