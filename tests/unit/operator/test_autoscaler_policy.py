"""The autoscaler's pure policy, scenario by scenario: each a load over time and the replicas it gets."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from modelplex.crds.spec import Scaling
from modelplex.operator.autoscaler.policy import (
    Decision,
    Fleet,
    History,
    PolicySettings,
    Signals,
    Why,
    decide,
)

TICK = 2.0  # seconds between decisions


def _scaling(**fields: object) -> Scaling:
    return Scaling.model_validate({"maxReplicas": 10, **fields})


def _run(
    scaling: Scaling,
    demand: Callable[[float], int],
    seconds: float,
    replicas: int = 1,
    start_seconds: float = 0.0,
    loading: bool = False,
) -> list[Decision]:
    """Decisions every TICK against a fleet whose new replicas are ready `start_seconds` after asked for."""
    history, decisions = History(), []
    asked: list[float] = [0.0 if loading else -start_seconds] * replicas  # when each was asked for
    now = 0.0
    while now < seconds:
        ready = sum(1 for t in asked if now - t >= start_seconds)
        load = demand(now)
        signals = Signals(running=load, arrivals=load)
        decision = decide(scaling, Fleet(len(asked), ready), signals, history, now)
        history = decision.history
        if decision.replicas > len(asked):
            asked += [now] * (decision.replicas - len(asked))
        else:
            asked = asked[: decision.replicas]
        decisions.append(decision)
        now += TICK
    return decisions


def _changes(decisions: list[Decision]) -> int:
    return sum(1 for a, b in itertools.pairwise(decisions) if a.replicas != b.replicas)


def test_a_burst_scales_up_at_once_in_panic() -> None:
    decisions = _run(_scaling(), lambda t: 8 if t < 20 else 40, 24)
    assert decisions[9].replicas == 1  # 8 requests on one replica at a target of 8: as it should be
    burst = decisions[10]
    assert (burst.replicas, burst.reason) == (5, Why.PANIC)  # one decision: 40 over 1 x 8
    assert "panic" in burst.message


def test_panic_blocks_scale_down_and_stabilisation_holds_the_peak_for_its_window() -> None:
    decisions = _run(_scaling(), lambda t: 40 if t < 10 else 0, 400)
    peak = max(d.replicas for d in decisions)
    assert peak == 5
    at = {round(i * TICK): d for i, d in enumerate(decisions)}
    assert at[60].replicas == 5  # the panic lasts a stable window after the load was last high
    assert at[300].replicas == 5
    assert at[300].reason == Why.STABILIZING
    assert decisions[-1].replicas == 1  # then down, at most half at a time
    downs = [b.replicas for a, b in itertools.pairwise(decisions) if b.replicas < a.replicas]
    assert downs
    assert all(down >= 1 for down in downs)


def test_a_square_wave_does_not_flap() -> None:
    # 30 s at 32 requests, 30 s at 4, for 30 minutes: the replicas settle and stay.
    decisions = _run(_scaling(), lambda t: 32 if int(t // 30) % 2 == 0 else 4, 1800)
    assert _changes(decisions[60:]) <= 2
    assert decisions[-1].replicas >= 2  # sized for the load's peaks, not its troughs


def test_replicas_still_starting_count_as_capacity() -> None:
    # A model takes 90 s to load; meanwhile the queue grows from 24 to 40 requests (less than twice what
    # the replicas asked for will serve): one scale-up, not one per tick.
    decisions = _run(
        _scaling(), lambda t: 0 if t < 10 else min(40, 24 + int(t - 10) // 3), 80, start_seconds=90
    )
    assert {d.replicas for d in decisions} == {1, 3}
    assert _changes(decisions) == 1


def test_min_and_max_always_hold_and_say_so() -> None:
    huge = _run(_scaling(maxReplicas=4), lambda t: 400, 10)[-1]
    assert (huge.replicas, huge.limited) == (4, Why.TOO_MANY)
    none = _run(_scaling(minReplicas=2), lambda t: 0, 700, replicas=3)[-1]
    assert (none.replicas, none.limited) == (2, Why.TOO_FEW)


def test_idle_scales_to_zero_only_after_the_idle_time() -> None:
    scaling = _scaling(minReplicas=0, scaleToZeroIdleSeconds=120)
    decisions = _run(scaling, lambda t: 2 if t < 10 else 0, 200)
    at = {round(i * TICK): d.replicas for i, d in enumerate(decisions)}
    assert at[120] == 1  # 110 s since the last request
    assert at[132] == 0
    assert decisions[66].reason == Why.IDLE


def test_the_first_request_at_zero_brings_exactly_one_replica() -> None:
    scaling = _scaling(minReplicas=0, scaleToZeroIdleSeconds=60)
    decisions = _run(scaling, lambda t: 0 if t < 20 else 3, 60, replicas=0, start_seconds=30)
    counts = [d.replicas for d in decisions]
    assert counts[:10] == [0] * 10
    assert counts[10] == 1
    assert decisions[10].reason == Why.SCALE_FROM_ZERO
    assert set(counts[10:]) == {1}  # 3 requests fit one replica: no second write while it loads


@pytest.mark.parametrize("source", ["engine m-0 /metrics", "gateway 10.0.0.7 /metrics"])
def test_a_signal_that_cannot_be_read_changes_nothing(source: str) -> None:
    decision = decide(_scaling(), Fleet(3, 3), Signals(unreadable=(source,)), History(), 0.0)
    assert (decision.replicas, decision.reason, decision.able) == (3, Why.METRICS_UNAVAILABLE, False)
    assert source in decision.message


def test_small_noise_within_the_tolerance_changes_nothing() -> None:
    decisions = _run(_scaling(), lambda t: 17 if int(t) % 4 == 0 else 15, 120, replicas=2)
    assert {d.replicas for d in decisions} == {2}


def test_kv_cache_pressure_scales_out_when_the_queue_does_not() -> None:
    history, decision = History(), None
    for tick in range(10):
        signals = Signals(running=4, kv_cache=0.95)
        decision = decide(_scaling(), Fleet(2, 2), signals, history, tick * TICK)
        history = decision.history
    assert decision is not None
    assert (decision.replicas, decision.reason) == (3, Why.KV_CACHE)  # 2 x 0.95 / 0.8 = 2.4


def test_no_more_replicas_are_asked_for_while_some_cannot_be_scheduled() -> None:
    decision = decide(_scaling(), Fleet(4, 2, unschedulable=2), Signals(running=80), History(), 0.0)
    assert (decision.replicas, decision.limited) == (4, Why.INSUFFICIENT_GPU)


def test_only_idleness_goes_to_zero() -> None:
    no_idle = _run(_scaling(minReplicas=0), lambda t: 0, 700, replicas=3)
    assert {d.replicas for d in no_idle[-10:]} == {1}
    idle = _run(
        _scaling(minReplicas=0, scaleToZeroIdleSeconds=30), lambda t: 1 if t < 2 else 0, 60, replicas=3
    )
    assert next(d.reason for d in idle if d.replicas == 0) == Why.IDLE


def _serve(
    scaling: Scaling,
    rate: Callable[[float], float],
    seconds: float,
    settings: PolicySettings,
    per_replica: float = 2.0,
    seats: int = 8,
    start_seconds: float = 60.0,
) -> list[tuple[float, Decision]]:
    """A fluid fleet: `rate(t)` requests/s arrive, each ready replica answers `per_replica` requests/s
    while it has work and runs up to `seats` of them; the rest wait in the engines. `arrivals` carries the
    answers, as the gateways' requests counter does."""
    history, decisions, held = History(), [], 0.0
    asked: list[float] = [-start_seconds]
    now = 0.0
    while now < seconds:
        ready = sum(1 for t in asked if now - t >= start_seconds)
        held += rate(now) * TICK
        answered = min(held, ready * per_replica * TICK)
        held -= answered
        running = min(round(held), seats * ready)
        signals = Signals(waiting=round(held) - running, running=running, arrivals=round(answered))
        decision = decide(scaling, Fleet(len(asked), ready), signals, history, now, settings)
        history = decision.history
        if decision.replicas > len(asked):
            asked += [now] * (decision.replicas - len(asked))
        else:
            asked = asked[: decision.replicas]
        decisions.append((now, decision))
        now += TICK
    return decisions


@pytest.mark.parametrize(("drain", "most"), [(60.0, 5), (0.0, 10)])
def test_a_backlog_growing_through_a_cold_start_asks_for_what_the_arrivals_need(
    drain: float, most: int
) -> None:
    # 10 requests/s on replicas that answer 2/s each: 5 replicas' worth. While the new replicas load the
    # engines' queue grows past maxReplicas x target; once one replica's saturated throughput is known,
    # the scale-up serves the arrivals plus the backlog over a minute (5), not the queue (10).
    settings = PolicySettings(backlog_drain_seconds=drain)
    decisions = _serve(_scaling(), lambda t: 10.0, 120, settings)
    assert max(d.replicas for _, d in decisions) == most
    assert decisions[-1][1].replicas >= 5


@pytest.mark.parametrize(("window", "reversals"), [(20.0, 0), (0.0, 1)])
def test_bursts_shorter_than_a_cold_start_keep_their_replicas_between_them(
    window: float, reversals: int
) -> None:
    # 20 s at 10 requests/s every 60 s: the mean load is a third of a burst's. The arrival rate's peak
    # over the scale-down window holds what the bursts need, so the fleet neither shrinks to the mean
    # before the next burst nor comes back up after it.
    settings = PolicySettings(rate_window_seconds=window)
    decisions = _serve(_scaling(), lambda t: 10.0 if t % 60 < 20 else 0.0, 1800, settings)
    counts = [d.replicas for t, d in decisions if t >= 300]
    directions = [1 if b > a else -1 for a, b in itertools.pairwise(counts) if a != b]
    assert sum(1 for a, b in itertools.pairwise(directions) if a != b) >= reversals
    if window:
        assert len(set(counts)) == 1
        assert counts[0] >= 5


def test_a_replica_still_loading_is_not_idle() -> None:
    # A model that takes 90 s to load, with an idle time of 30 s and no request: it is ready first.
    scaling = _scaling(minReplicas=0, scaleToZeroIdleSeconds=30)
    decisions = _run(scaling, lambda t: 0, 160, replicas=1, start_seconds=90, loading=True)
    at = {round(i * TICK): d.replicas for i, d in enumerate(decisions)}
    assert at[88] == 1  # still loading: never idle
    assert at[116] == 1  # ready for 26 s
    assert at[124] == 0  # ready and idle for 30 s


def test_the_throughput_cap_never_overrides_the_queue_target_for_requests_being_served() -> None:
    # A closed loop of clients on one replica: its answers measure its throughput (the engine's queue
    # is never empty for long), and the arrivals equal them. Then 6 run at a target of 2 per replica:
    # the throughput says one replica keeps up, the target asks for 3, and the target wins.
    scaling, fleet, history = (
        _scaling(maxReplicas=3, targets={"queueDepthPerReplica": 2}),
        Fleet(1, 1),
        History(),
    )
    for tick in range(10):
        moderate = Signals(waiting=1, running=2, gateway_in_flight=3, arrivals=8)
        history = decide(scaling, fleet, moderate, history, tick * TICK).history
    busy = Signals(waiting=1, running=6, gateway_in_flight=7, arrivals=8)
    assert decide(scaling, fleet, busy, history, 10 * TICK).replicas == 3


def test_a_model_first_seen_keeps_its_replicas_through_the_scale_down_window() -> None:
    """An operator that starts (or a new ModelDeployment) has no history: the replicas as they are
    stand for the window's first recommendation, so an idle reading cuts nothing for 300 s."""
    history, replicas = History(), list[int]()
    for tick in range(0, 320, 10):
        decision = decide(_scaling(), Fleet(3, 3), Signals(), history, float(tick))
        history, replicas = decision.history, [*replicas, decision.replicas]
    assert set(replicas[:30]) == {3}  # t < 300 s
    assert replicas[-1] < 3
    assert decide(_scaling(), Fleet(3, 3), Signals(), History(), 0.0).reason == Why.STABILIZING
