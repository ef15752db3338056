"""Config names of routing policies. Each model gets its own policy instance (policies keep state)."""

from __future__ import annotations

from collections.abc import Callable

from modelplex.gateway.routing.base import RoutingPolicy
from modelplex.gateway.routing.least_load import LeastLoad
from modelplex.gateway.routing.prefix_affinity import PrefixAffinity
from modelplex.gateway.routing.round_robin import RoundRobin
from modelplex.gateway.routing.session_affinity import SessionAffinity

DEFAULT_POLICY = "prefix-affinity"

POLICIES: dict[str, Callable[[float], RoutingPolicy]] = {
    "round-robin": lambda _factor: RoundRobin(),
    "least-load": lambda _factor: LeastLoad(),
    "prefix-affinity": PrefixAffinity,
    "session-affinity": SessionAffinity,
}


def make_policy(name: str, bounded_load_factor: float) -> RoutingPolicy:
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown routing policy {name!r}; known: {', '.join(sorted(POLICIES))}") from None
    return factory(bounded_load_factor)
