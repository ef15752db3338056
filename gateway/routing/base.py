"""The routing interface: `async choose(request, snapshot) -> Endpoint`. Policies do no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One ready replica of a model."""

    id: str  # stable name used in metrics and usage (e.g. pod name or host:port)
    url: str  # base URL, without /v1


@dataclass(frozen=True, slots=True)
class EndpointLoad:
    """What the gateway knows about a replica's load when it routes a request."""

    endpoint: Endpoint
    in_flight: int = 0  # this gateway's requests on the replica, now
    others: int = 0  # other gateways' requests on it, as of the last scrape of the engine's gauges
    kv_cache_usage: float = 0.0  # scraped vllm:kv_cache_usage_perc, 0..1

    @property
    def load(self) -> float:
        """Requests on the replica, counting the other gateways' too; KV cache use breaks ties.

        Only the other gateways' share comes from the (seconds old) scrape: a gateway's own share is
        always its fresh count, or a replica whose queue had just drained would look busy until the
        next scrape and every request would go elsewhere meanwhile (herding on stale load)."""
        return self.in_flight + self.others + self.kv_cache_usage


@dataclass(frozen=True, slots=True)
class RouteRequest:
    model: str
    prefix: str  # leading prompt text
    session_id: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """`members` are every healthy ready replica (the stable set affinity hashes over);
    `available` is the non-empty subset that may take this request now (not saturated, not excluded).
    """

    members: tuple[EndpointLoad, ...]
    available: tuple[EndpointLoad, ...]


class RoutingPolicy(Protocol):
    async def choose(self, request: RouteRequest, snapshot: Snapshot) -> Endpoint:
        """One endpoint of `snapshot.available`."""
        ...


def least_loaded(candidates: tuple[EndpointLoad, ...]) -> Endpoint:
    return min(candidates, key=lambda e: (e.load, e.endpoint.id)).endpoint
