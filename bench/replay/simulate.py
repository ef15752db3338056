"""One trace through one fleet under one controller, and what came of it."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from .controllers import Controller
from .fleet import Job, Profile, SimFleet
from .traces import Trace

STEP = 0.25  # seconds per simulation step


@dataclass(frozen=True)
class Result:
    trace: str
    profile: str
    controller: str
    requests: int
    gpu_hours: float
    slo_attainment: float  # share of all requests (dropped ones count as misses) with TTFT <= the SLO
    p50_ttft: float  # over the requests that got a first token
    p95_ttft: float
    changes_per_hour: float  # writes of spec.replicas
    reversals_per_hour: float  # changes in the opposite direction of the change before
    dropped: int
    peak_replicas: int
    mean_ready: float


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def run(trace: Trace, profile: Profile, controller: Controller, step: float = STEP) -> Result:
    """Step the fleet through the trace; the controller is asked every `controller.period` seconds. After the
    trace ends the fleet keeps running (uncounted) until every request has its first token or was dropped."""
    fleet = SimFleet(profile, controller.initial())
    jobs = [Job(r) for r in trace.requests]
    upcoming, now, next_decision, ready_seconds = 0, 0.0, 0.0, 0.0
    horizon = trace.seconds + profile.deadline + step
    while now < trace.seconds or (fleet.busy() and now < horizon):
        if now >= next_decision - 1e-9:
            fleet.scale(controller.desired(now, fleet), now)
            next_decision += controller.period
        first = upcoming
        while upcoming < len(jobs) and jobs[upcoming].request.arrival <= now:
            upcoming += 1
        counted = now < trace.seconds
        fleet.step(now, step, jobs[first:upcoming], counted)
        if counted:
            ready_seconds += fleet.ready * step
        now += step
    ttfts = [t for t in (job.ttft for job in jobs) if t is not None]
    met = sum(1 for t in ttfts if t <= profile.ttft_slo)
    changes = [(t, n) for t, n in fleet.spec_changes if t < trace.seconds]
    directions = [1 if b > a else -1 for (_, a), (_, b) in itertools.pairwise(changes)]
    reversals = sum(1 for a, b in itertools.pairwise(directions) if a != b)
    hours = trace.seconds / 3600
    return Result(
        trace=trace.name,
        profile=profile.name,
        controller=controller.name,
        requests=len(jobs),
        gpu_hours=fleet.gpu_seconds / 3600,
        slo_attainment=met / len(jobs) if jobs else 1.0,
        p50_ttft=_percentile(ttfts, 0.50),
        p95_ttft=_percentile(ttfts, 0.95),
        changes_per_hour=len(directions) / hours,
        reversals_per_hour=reversals / hours,
        dropped=sum(1 for job in jobs if job.dropped),
        peak_replicas=max(n for _, n in fleet.spec_changes),
        mean_ready=ready_seconds / trace.seconds,
    )
