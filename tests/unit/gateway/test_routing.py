import asyncio
from collections import Counter

import pytest

from modelplex.gateway.health import other_gateways_requests, parse_load
from modelplex.gateway.routing.base import Endpoint, EndpointLoad, RouteRequest, Snapshot
from modelplex.gateway.routing.registry import POLICIES, make_policy


def _loads(*in_flight: int, others: tuple[int, ...] = ()) -> tuple[EndpointLoad, ...]:
    elsewhere = others or (0,) * len(in_flight)
    return tuple(
        EndpointLoad(Endpoint(f"r{i}", f"http://r{i}"), n, o)
        for i, (n, o) in enumerate(zip(in_flight, elsewhere, strict=False))
    )


def _choose(name: str, request: RouteRequest, members: tuple[EndpointLoad, ...], available=None) -> str:  # type: ignore[no-untyped-def]
    policy = make_policy(name, 1.25)
    snapshot = Snapshot(members, members if available is None else available)
    return asyncio.run(policy.choose(request, snapshot)).id


def _request(prefix: str = "p", session: str | None = None) -> RouteRequest:
    return RouteRequest("m", prefix, session)


def test_registry_knows_the_four_policies_and_rejects_others() -> None:
    assert set(POLICIES) == {"round-robin", "least-load", "prefix-affinity", "session-affinity"}
    with pytest.raises(ValueError, match="unknown routing policy"):
        make_policy("random", 1.25)


def test_round_robin_cycles() -> None:
    policy = make_policy("round-robin", 1.25)
    members = _loads(0, 0, 0)
    picks = [asyncio.run(policy.choose(_request(), Snapshot(members, members))).id for _ in range(6)]
    assert picks == ["r0", "r1", "r2", "r0", "r1", "r2"]


def test_least_load_counts_own_in_flight_and_other_gateways_requests() -> None:
    assert _choose("least-load", _request(), _loads(3, 1, 2)) == "r1"
    assert _choose("least-load", _request(), _loads(0, 1, 2, others=(5, 0, 0))) == "r1"


def test_prefix_affinity_sends_a_shared_prefix_to_one_replica_and_spreads_different_ones() -> None:
    members = _loads(0, 0, 0, 0)
    same = {_choose("prefix-affinity", _request("system prompt A"), members) for _ in range(5)}
    assert len(same) == 1
    spread = Counter(_choose("prefix-affinity", _request(f"prompt {i}"), members) for i in range(200))
    assert len(spread) == 4
    assert min(spread.values()) > 20


def test_prefix_affinity_falls_back_to_least_load_over_the_bound() -> None:
    members = _loads(0, 0, 0)
    owner = _choose("prefix-affinity", _request("k"), members)
    loaded = tuple(EndpointLoad(m.endpoint, 10 if m.endpoint.id == owner else 1) for m in members)
    assert _choose("prefix-affinity", _request("k"), loaded) != owner


def test_affinity_picks_only_available_replicas() -> None:
    members = _loads(0, 0, 0)
    owner = _choose("prefix-affinity", _request("k"), members)
    available = tuple(m for m in members if m.endpoint.id != owner)
    assert _choose("prefix-affinity", _request("k"), members, available) != owner


def test_session_affinity_follows_the_session_not_the_prompt() -> None:
    members = _loads(0, 0, 0, 0)
    picks = {_choose("session-affinity", _request(f"prompt {i}", "s-1"), members) for i in range(10)}
    assert len(picks) == 1
    sessions = {_choose("session-affinity", _request("same", f"s-{i}"), members) for i in range(40)}
    assert len(sessions) > 1


def test_removing_a_replica_moves_only_its_keys() -> None:
    members = _loads(0, 0, 0, 0)
    before = {i: _choose("prefix-affinity", _request(f"k{i}"), members) for i in range(200)}
    fewer = members[:3]
    after = {i: _choose("prefix-affinity", _request(f"k{i}"), fewer) for i in range(200)}
    moved = [i for i in before if before[i] != after[i]]
    assert all(before[i] == "r3" for i in moved)


def test_the_scraped_load_counts_only_other_gateways_requests() -> None:
    """An engine holding 7 requests, 5 of them this gateway's: 2 are other gateways'; never below 0
    (this gateway's count moves between the engine writing its page and the page arriving)."""
    page = parse_load(
        'vllm:num_requests_waiting{model_name="m"} 3.0\nvllm:num_requests_running{model_name="m"} 4.0\n'
    )
    assert other_gateways_requests(page, in_flight=5) == 2
    assert other_gateways_requests(page, in_flight=9) == 0
