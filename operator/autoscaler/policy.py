"""How many replicas a model needs, from its signals and their recent history (pure: no I/O, no clock).

One decision = `decide(spec, fleet, signals, history, now, settings)`: what each target asks for
(queue depth and KV-cache utilisation), averaged over a stable window and a short panic window;
panic (load at least twice the ready capacity) scales up at once and blocks scale-down until it
ends; scale-down acts on the highest recommendation of its stabilisation window, by a bounded step;
replicas still starting count as capacity on its way; once a replica's saturated throughput has been
measured (from the gateways' answers), a scale-up asks for what the arrivals plus a drained backlog
need rather than what the queue says, and the replicas the recent arrival rate needs stand through the
scale-down window (bursts shorter than a cold start keep their capacity); min/max always hold; after
an idle period a model with `scaleToZeroIdleSeconds` goes to zero, and the first request brings it
back to one.
The formulas are in docs/architecture.md ("Autoscaler").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from modelplex.crds.spec import Scaling


class Why:
    """Reasons of decisions, in the HPA's spirit: CamelCase, one cause each."""

    QUEUE_DEPTH = "QueueDepth"
    KV_CACHE = "KVCacheUtilization"
    PANIC = "Panic"
    STABILIZING = "ScaleDownStabilizing"
    BURST_CAPACITY = "BurstCapacity"  # the arrival rate of recent bursts asks for more than there is
    IDLE = "Idle"
    SCALE_FROM_ZERO = "ScaleFromZero"
    STARTING = "ReplicasStarting"
    WITHIN_TOLERANCE = "WithinTolerance"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    TOO_FEW = "TooFewReplicas"
    TOO_MANY = "TooManyReplicas"
    INSUFFICIENT_GPU = "InsufficientGPU"


@dataclass(frozen=True)
class PolicySettings:
    stable_window_seconds: float = 60.0
    panic_window_seconds: float = 6.0
    panic_threshold: float = 2.0  # load / ready capacity at which panic starts
    scale_down_window_seconds: float = 300.0
    tolerance: float = 0.1  # a load within ±10 % of the target changes nothing
    max_step_up: int = 4  # at most max(4, current) replicas more per decision (at most doubling beyond 4)
    max_step_down_share: float = 0.5  # at most half of the replicas fewer per decision
    # Throughput sizing, once a replica's saturated throughput has been seen (History.capacity):
    rate_window_seconds: float = 20.0  # the arrival rate whose peak holds replicas through bursts (0: off)
    backlog_drain_seconds: float = 60.0  # a scale-up serves the arrivals plus the backlog over this (0: off)


@dataclass(frozen=True)
class Signals:
    """One reading of a model's load, summed over its replicas and gateway replicas.

    `unreadable` names the sources that could not be read: such a reading is never taken as zero.
    """

    waiting: int = 0  # engines: vllm:num_requests_waiting
    running: int = 0  # engines: vllm:num_requests_running
    kv_cache: float | None = None  # engines: mean vllm:kv_cache_usage_perc of ready replicas, 0..1
    gateway_queued: int = 0  # requests held by the gateways for a free replica (or a replica at all)
    gateway_in_flight: int = 0  # requests the gateways have sent to the engines
    arrivals: int = 0  # requests the gateways answered since the previous reading (requests_total growth)
    unreadable: tuple[str, ...] = ()

    @property
    def load(self) -> int:
        """Requests the engines hold (waiting or running): the demand without the gateway's backlog."""
        return max(self.waiting + self.running, self.gateway_in_flight)

    @property
    def demand(self) -> int:
        """Requests that want a replica now. The engines and the gateways see the same requests from
        two sides, one of which may lag; the larger view is the safer one."""
        return self.gateway_queued + max(self.waiting + self.running, self.gateway_in_flight)


@dataclass(frozen=True)
class Fleet:
    replicas: int  # spec.replicas: ready, starting and pending together
    ready: int
    unschedulable: int = 0  # replicas pending because no node has the GPUs


@dataclass(frozen=True)
class Sample:
    time: float
    demand: int
    kv_cache: float | None
    ready: int
    load: int = 0  # Signals.load: the demand without the gateway's backlog
    answered: int = 0  # Signals.arrivals
    saturated: bool = False  # every seat taken: answers then measure a replica's throughput
    running: int = 0  # Signals.running: requests the engines are serving, no queue of any kind


@dataclass(frozen=True)
class History:
    """What the policy remembers between decisions; `decide` returns the next one."""

    samples: tuple[Sample, ...] = ()
    recommendations: tuple[tuple[float, int], ...] = ()  # (time, replicas) for scale-down stabilisation
    panic_until: float | None = None
    capacity: float | None = None  # requests/s one ready replica answers when saturated
    last_activity: float | None = None  # the last reading with arrivals or demand


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: str
    message: str
    limited: str | None = None  # TooFewReplicas, TooManyReplicas or InsufficientGPU when a bound binds
    able: bool = True  # False: the signals could not be read, nothing was decided
    history: History = field(default_factory=History)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _window(history: History, now: float, seconds: float) -> list[Sample]:
    return [s for s in history.samples if s.time > now - seconds]


def _remember(history: History, signals: Signals, fleet: Fleet, now: float, keep: float) -> History:
    saturated = signals.waiting >= max(1, fleet.ready) or signals.gateway_queued > 0  # all seats taken
    sample = Sample(
        now,
        signals.demand,
        signals.kv_cache,
        fleet.ready,
        signals.load,
        signals.arrivals,
        saturated,
        signals.running,
    )
    samples = (*(s for s in history.samples if s.time > now - keep), sample)
    # Idle time counts only while a replica serves: one still loading has not been idle, it was unusable.
    active = signals.arrivals > 0 or signals.demand > 0 or (fleet.replicas > 0 and fleet.ready == 0)
    first = history.last_activity is None  # idle time counts from the first reading
    return replace(history, samples=samples, last_activity=now if active or first else history.last_activity)


def _recommended(history: History, now: float, replicas: int, window: float) -> History:
    kept = tuple((t, r) for t, r in history.recommendations if t > now - window)
    return replace(history, recommendations=(*kept, (now, replicas)))


def _wanted(
    demand: float, kv_cache: float, fleet: Fleet, scaling: Scaling, tolerance: float
) -> tuple[int, str]:
    """Replicas the targets ask for and which target asks for most; the current count while the load
    is within `tolerance` of the target (small noise does nothing)."""
    targets = scaling.targets
    by_queue = demand / targets.queue_depth_per_replica
    by_kv = fleet.ready * kv_cache / targets.kv_cache_utilization
    reason, replicas = (Why.KV_CACHE, by_kv) if by_kv > by_queue else (Why.QUEUE_DEPTH, by_queue)
    if fleet.replicas and abs(replicas / fleet.replicas - 1) <= tolerance:
        return fleet.replicas, Why.WITHIN_TOLERANCE
    return math.ceil(replicas), reason


def _panic_until(
    history: History,
    panic_demand: float,
    fleet: Fleet,
    scaling: Scaling,
    now: float,
    settings: PolicySettings,
) -> float | None:
    """Panic starts when the short window's load is at least `panic_threshold` x the ready capacity,
    and lasts a stable window after the load was last that high."""
    ready_capacity = fleet.ready * scaling.targets.queue_depth_per_replica
    if panic_demand > 0 and panic_demand >= settings.panic_threshold * ready_capacity:
        return now + settings.stable_window_seconds
    return history.panic_until if history.panic_until and history.panic_until > now else None


def _stepped(current: int, wanted: int, settings: PolicySettings) -> int:
    if wanted > current:
        return min(wanted, current + max(settings.max_step_up, current))
    most_down = max(1, math.floor(current * settings.max_step_down_share))
    return max(wanted, current - most_down)


def _bounded(replicas: int, scaling: Scaling, fleet: Fleet) -> tuple[int, str | None]:
    if replicas < scaling.min_replicas:
        return scaling.min_replicas, Why.TOO_FEW
    if replicas > scaling.max_replicas:
        return scaling.max_replicas, Why.TOO_MANY
    if fleet.unschedulable and replicas > fleet.replicas:
        return fleet.replicas, Why.INSUFFICIENT_GPU  # asking for more GPUs than exist helps nobody
    return replicas, None


def _idle(history: History, scaling: Scaling, now: float) -> bool:
    idle_after = scaling.scale_to_zero_idle_seconds
    if idle_after is None or scaling.min_replicas != 0 or history.last_activity is None:
        return False
    return now - history.last_activity >= idle_after


def decide(
    scaling: Scaling,
    fleet: Fleet,
    signals: Signals,
    history: History,
    now: float,
    settings: PolicySettings = PolicySettings(),
) -> Decision:
    """The replicas `scaling` asks for now, with the reason; the history to pass next time."""
    if signals.unreadable:
        unread = ", ".join(signals.unreadable)
        return Decision(
            fleet.replicas, Why.METRICS_UNAVAILABLE, f"cannot read {unread}", None, False, history
        )
    keep = max(settings.stable_window_seconds, settings.scale_down_window_seconds)
    history = _remember(history, signals, fleet, now, keep)
    if not history.recommendations:
        # A model first seen (or an operator just started) has no scale-down window yet: its replicas
        # as they are stand for one, as if recommended now, rather than an empty window allowing any cut.
        history = replace(history, recommendations=((now, fleet.replicas),))
    if fleet.replicas == 0:
        return _from_zero(scaling, fleet, signals, history, now, settings)
    if _idle(history, scaling, now):
        message = f"no request for {scaling.scale_to_zero_idle_seconds} s"
        history = _recommended(history, now, 0, settings.scale_down_window_seconds)
        return Decision(0, Why.IDLE, message, None, True, history)
    return _scaled(scaling, fleet, history, now, settings)


def _from_zero(
    scaling: Scaling, fleet: Fleet, signals: Signals, history: History, now: float, settings: PolicySettings
) -> Decision:
    """At zero only a request matters: the first one brings one replica at once."""
    if signals.demand > 0 or signals.arrivals > 0:
        replicas, limited = _bounded(1, scaling, fleet)
        reason, message = Why.SCALE_FROM_ZERO, f"{signals.demand} request(s) waiting for a replica"
    else:
        replicas, limited = _bounded(0, scaling, fleet)
        reason, message = Why.IDLE, "no request waiting"
    history = _recommended(history, now, replicas, settings.scale_down_window_seconds)
    return Decision(replicas, reason, message, limited, True, history)


CAPACITY_WEIGHT = 0.3  # weight of the newest measurement in the moving average of `History.capacity`


def _since(history: History, now: float, seconds: float) -> list[Sample]:
    """The samples of the last `seconds`, with the one they start from."""
    return [s for s in history.samples if s.time >= now - seconds - 1e-9]


def _capacity(history: History, now: float, seconds: float) -> float | None:
    """Requests/s one replica answers at full load, measured over the last `seconds` when every reading
    of them was saturated (as many engine-queued requests as ready replicas, or a gateway backlog) with
    the same ready count; otherwise the last estimate. Answers are `Signals.arrivals`."""
    samples = _since(history, now, seconds)
    if len(samples) < 3 or not all(s.saturated for s in samples[1:]):
        return history.capacity
    ready = samples[-1].ready
    answered = sum(s.answered for s in samples[1:])
    elapsed = samples[-1].time - samples[0].time
    if ready <= 0 or any(s.ready != ready for s in samples) or answered < ready or elapsed <= 0:
        return history.capacity
    measured = answered / ready / elapsed
    old = history.capacity
    return measured if old is None else (1 - CAPACITY_WEIGHT) * old + CAPACITY_WEIGHT * measured


def _arrival_rate(history: History, now: float, seconds: float) -> float:
    """Requests/s that arrived over the last `seconds`: answered ones plus the growth of the demand."""
    samples = _since(history, now, seconds)
    if len(samples) < 2:
        return 0.0
    arrived = sum(s.answered for s in samples[1:]) + samples[-1].demand - samples[0].demand
    return max(arrived, 0) / (samples[-1].time - samples[0].time)


def _scaled(
    scaling: Scaling, fleet: Fleet, history: History, now: float, settings: PolicySettings
) -> Decision:
    target = scaling.targets.queue_depth_per_replica
    capacity = _capacity(history, now, settings.panic_window_seconds)
    history = replace(history, capacity=capacity)
    stable = _window(history, now, settings.stable_window_seconds)
    demand = _mean([s.demand for s in stable])
    recent = [s.demand for s in _window(history, now, settings.panic_window_seconds)]
    panic_demand = _mean(recent)
    kv_cache = _mean([s.kv_cache for s in stable if s.kv_cache is not None])
    wanted, reason = _wanted(demand, kv_cache, fleet, scaling, settings.tolerance)
    panic_until = _panic_until(history, panic_demand, fleet, scaling, now, settings)
    peak = max(recent)
    if panic_until is not None:  # up at once to the short window's peak; never down during panic
        burst = math.ceil(peak / target)
        wanted, reason = max(wanted, burst, fleet.replicas), Why.PANIC
    if capacity and settings.backlog_drain_seconds and wanted > fleet.replicas:
        # A queue that grows because the replicas are too few says "more", not how many: once a replica's
        # throughput is known, serve the arrivals plus the backlog over `backlog_drain_seconds`, no more.
        backlog = history.samples[-1].demand - history.samples[-1].load
        arrivals = _arrival_rate(history, now, settings.panic_window_seconds)
        served = math.ceil((arrivals + backlog / settings.backlog_drain_seconds) / capacity)
        # The cap is on the backlog's say only: the requests being served still count at the target.
        serving = math.ceil(history.samples[-1].running / target)
        wanted = max(fleet.replicas, min(wanted, max(served, serving)))
    starting = fleet.ready < fleet.replicas
    if starting and fleet.replicas < wanted < settings.panic_threshold * fleet.replicas:
        wanted, reason = fleet.replicas, Why.STARTING  # the capacity asked for is on its way
    history = replace(history, panic_until=panic_until)
    kept = wanted
    if capacity and settings.rate_window_seconds:
        # The replicas the arrival rate needs (no backlog in it) stand for the scale-down window too, so
        # bursts shorter than a cold start keep the capacity they need between them.
        rate = _arrival_rate(history, now, settings.rate_window_seconds) / capacity
        kept = max(wanted, math.ceil(rate - settings.tolerance))
    history = _recommended(history, now, kept, settings.scale_down_window_seconds)
    if wanted < fleet.replicas:
        highest = max(r for _, r in history.recommendations)
        if highest > wanted:
            # Above the current count only the arrival-rate floor can be: recent bursts needed more.
            reason = Why.STABILIZING if highest <= fleet.replicas else Why.BURST_CAPACITY
            wanted = highest
    replicas, limited = _bounded(_stepped(fleet.replicas, wanted, settings), scaling, fleet)
    replicas = max(replicas, 1)  # only idleness takes a model to zero (scaleToZeroIdleSeconds)
    message = _explain(reason, demand, peak, kv_cache, fleet, scaling, replicas)
    return Decision(replicas, reason, message, limited, True, history)


def _explain(
    reason: str,
    demand: float,
    peak: float,
    kv_cache: float,
    fleet: Fleet,
    scaling: Scaling,
    replicas: int,
) -> str:
    targets = scaling.targets
    if reason == Why.PANIC:
        return f"panic: {peak:.0f} requests over {fleet.ready} ready x {targets.queue_depth_per_replica}"
    if reason == Why.KV_CACHE:
        target = targets.kv_cache_utilization
        return f"KV cache {kv_cache:.0%} over {fleet.ready} ready replicas, target {target:.0%}"
    return f"queue depth {demand:.0f} over {replicas} x {targets.queue_depth_per_replica}"
