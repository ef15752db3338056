"""The three controllers compared: static peak provisioning, the HPA/KEDA queue threshold, Modelplex's policy.

Each is asked every `period` seconds for the replicas it wants and reads only what it would read in a
cluster (the fleet's spec, ready and pending counts, the engines' metrics, the gateway's counters).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from modelplex.crds.spec import Scaling
from modelplex.operator.autoscaler.policy import History, PolicySettings, decide

from .fleet import SimFleet


@dataclass(frozen=True)
class Bounds:
    min_replicas: int
    max_replicas: int


class Controller(Protocol):
    name: str
    period: float

    def initial(self) -> int: ...

    def desired(self, now: float, fleet: SimFleet) -> int: ...


@dataclass
class Static:
    """Replicas for the trace's peak, all the time."""

    replicas: int
    name: str = "static-peak"
    period: float = 60.0

    def initial(self) -> int:
        return self.replicas

    def desired(self, now: float, fleet: SimFleet) -> int:
        return self.replicas


@dataclass
class QueueThreshold:
    """The HPA formula on `vllm:num_requests_waiting`, as KEDA's Prometheus trigger feeds it in
    vllm-project/production-stack (docs/source/use_cases/autoscaling-keda.rst: query
    `vllm:num_requests_waiting`, threshold 5, pollingInterval 15, cooldownPeriod 360; scale to zero with a
    keep-alive trigger on the router's `rate(vllm:num_incoming_requests_total[1m]) > 0`).

    Every 15 s (HPA's sync period): ratio = waiting / (target x current); within 10 % of 1 nothing changes,
    else desired = ceil(waiting / target) (HPA's AverageValue on an external metric). Scale-up at most
    max(2 x current, current + 4) (HPA's default behaviour); scale-down acts on the highest recommendation of
    the last 300 s (HPA's default stabilisation window). At zero, KEDA activates to 1 on any request in the
    last minute; with minReplicas 0 it deactivates after 360 s with no waiting request and no arrival.
    Prometheus' scrape delay is not modelled (it would only make this baseline slower)."""

    bounds: Bounds
    target: float = 5.0
    tolerance: float = 0.1
    window: float = 300.0
    cooldown: float = 360.0
    name: str = "hpa-queue"
    period: float = 15.0
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    last_active: float = 0.0

    def initial(self) -> int:
        return max(1, self.bounds.min_replicas)

    def desired(self, now: float, fleet: SimFleet) -> int:
        current = fleet.spec
        waiting = fleet.engine_waiting()
        if waiting > 0 or fleet.arrivals_between(now - 60, now) > 0:
            self.last_active = now
        if current == 0:  # KEDA's activation: 0 -> 1 on the keep-alive trigger
            return 1 if self.last_active == now else 0
        if self.bounds.min_replicas == 0 and now - self.last_active >= self.cooldown:
            self.recommendations.clear()
            return 0
        ratio = waiting / (self.target * current)
        raw = current if abs(ratio - 1) <= self.tolerance else math.ceil(waiting / self.target)
        raw = min(max(raw, 1, self.bounds.min_replicas), self.bounds.max_replicas)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > now - self.window]
        self.recommendations.append((now, raw))
        if raw > current:
            return min(raw, max(2 * current, current + 4))
        return min(current, max(r for _, r in self.recommendations))


@dataclass
class Modelplex:
    """The real policy, `modelplex.operator.autoscaler.policy.decide`, fed the fleet's signals every 2 s;
    `Signals.arrivals` is the growth of the gateway's answered-requests counter since the last reading, as
    `operator/autoscaler/signals.py` reads it in a cluster."""

    scaling: Scaling
    settings: PolicySettings = field(default_factory=PolicySettings)
    name: str = "modelplex"
    period: float = 2.0
    history: History = field(default_factory=History)
    answered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def initial(self) -> int:
        return max(1, self.scaling.min_replicas)

    def desired(self, now: float, fleet: SimFleet) -> int:
        answered = fleet.answered
        signals = fleet.signals(answered - self.answered)
        self.answered = answered
        decision = decide(self.scaling, fleet.policy_fleet(), signals, self.history, now, self.settings)
        self.history = decision.history
        if decision.replicas != fleet.spec:
            self.reasons[decision.reason] += 1
        return decision.replicas
