"""A simulated fleet of vLLM replicas behind one gateway, stepped in small fixed steps.

Per replica: at most `max_num_seqs` sequences are admitted (the rest wait in the engine's queue, which is
`vllm:num_requests_waiting`); an admitted request first needs its prompt prefilled at `prefill_rate`
tokens/s (prefills go first in a step, one after another, and take their time out of the step), then the
running sequences share the replica's decode throughput `decode_rate(batch)` equally. The first output
token comes out of the prefill, so TTFT = time in the gateway's queue + in the engine's queue + prefill.
KV cache: an admitted request reserves prompt + output tokens (admission stops when the reservation would
exceed the capacity: no preemption); the utilisation the engine reports is the tokens resident now
(prompts plus the tokens generated so far) over the capacity.

Replicas: a replica asked for takes a GPU if the pool has one free and is ready `cold_start` seconds later;
without a free GPU it stays pending (`Fleet.unschedulable`) and holds no GPU. A replica removed while ready
stops taking requests, hands its engine queue back to the gateway and drains what it runs, holding its GPU
until then. Scale-down removes pending replicas first, then starting ones (newest first), then the ready
replica with the least in flight (as a Deployment prefers not-ready pods).

The gateway holds requests (in arrival order) when no ready replica is below `gateway_in_flight` requests,
or when there is no ready replica at all, and sends each to the ready replica with the fewest in flight. A
request whose first token has not come `deadline` seconds after its arrival while it still waits in a queue
is dropped.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from dataclasses import dataclass, field

from modelplex.operator.autoscaler.policy import Fleet as PolicyFleet
from modelplex.operator.autoscaler.policy import Signals

from .traces import Request


@dataclass(frozen=True)
class Profile:
    """One replica's serving figures, the GPU pool and the SLO: see `profiles.py` for where they come from."""

    name: str
    model: str
    decode_at_one: float  # output tokens/s of a replica serving one sequence
    decode_at_max: float  # output tokens/s of a replica serving max_num_seqs sequences
    max_num_seqs: int  # sequences a replica runs at once
    prefill_rate: float  # prompt tokens/s
    kv_capacity: int  # KV-cache tokens per replica
    cold_start: float  # seconds from scheduled to ready
    max_model_len: int
    gpus_per_replica: int
    pool_gpus: int  # GPUs in the cluster for this model
    ttft_slo: float  # seconds
    gateway_in_flight: int = 64  # the gateway's replica_max_in_flight (its default)

    @property
    def deadline(self) -> float:
        """How long a request may wait for its first token before it counts as dropped."""
        return 60.0 + self.cold_start

    def decode_rate(self, batch: int) -> float:
        """Aggregate output tokens/s at `batch` sequences: r(b) = r_max * b / (b + b0), the saturating curve
        through the two calibration points (1, decode_at_one) and (max_num_seqs, decode_at_max)."""
        if batch <= 0:
            return 0.0
        one, top, n = self.decode_at_one, self.decode_at_max, self.max_num_seqs
        b0 = n * (top - one) / (one * n - top) if one * n > top else 0.0
        return one * (1 + b0) * batch / (batch + b0)

    def capacity_rps(self, mean_prompt: float, mean_output: float) -> float:
        """Requests/s one replica serves at full batch: prefill time plus its share of the batch's decode."""
        return 1.0 / (mean_prompt / self.prefill_rate + mean_output / self.decode_rate(self.max_num_seqs))


@dataclass(eq=False, slots=True)
class Job:
    """A request on its way through the gateway and an engine."""

    request: Request
    first_token: float | None = None
    finished: float | None = None
    dropped: bool = False
    prefill_left: float = 0.0
    v_start: float = 0.0  # the replica's per-sequence token clock when this job started decoding

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.request.arrival


PENDING, STARTING, READY, DRAINING = "pending", "starting", "ready", "draining"


@dataclass(eq=False)
class Replica:
    created: float
    state: str = PENDING
    ready_at: float = 0.0
    waiting: deque[Job] = field(default_factory=deque)  # the engine's queue
    prefilling: deque[Job] = field(default_factory=deque)  # admitted; head is being prefilled
    running: list[tuple[float, int, Job]] = field(default_factory=list)  # heap by the clock value it ends at
    clock: float = 0.0  # tokens each running sequence has generated since the replica started
    reserved: int = 0  # KV tokens reserved by admitted requests
    prompts: int = 0  # prompt tokens of admitted, unfinished requests
    clock_starts: float = 0.0  # sum of v_start over running jobs
    answered: int = 0  # requests finished here (the gateway counts each when its response ends)

    @property
    def in_flight(self) -> int:
        return len(self.waiting) + len(self.prefilling) + len(self.running)

    @property
    def holds_gpu(self) -> bool:
        return self.state in (STARTING, READY, DRAINING)

    def kv_usage(self, profile: Profile) -> float:
        resident = self.prompts + len(self.running) * self.clock - self.clock_starts
        return min(1.0, max(0.0, resident / profile.kv_capacity))

    def _finish(self, job: Job, now: float) -> None:
        job.finished = now
        self.answered += 1
        self.reserved -= job.request.prompt + job.request.output
        self.prompts -= job.request.prompt

    def step(self, now: float, dt: float, profile: Profile) -> None:
        seats = profile.max_num_seqs
        while self.waiting and len(self.prefilling) + len(self.running) < seats:
            job = self.waiting[0]
            need = job.request.prompt + job.request.output
            if self.reserved + need > profile.kv_capacity and (self.prefilling or self.running):
                break
            self.waiting.popleft()
            self.reserved += need
            self.prompts += job.request.prompt
            job.prefill_left = job.request.prompt
            self.prefilling.append(job)
        budget = dt
        while self.prefilling and budget > 1e-12:
            job = self.prefilling[0]
            needs = job.prefill_left / profile.prefill_rate
            if needs > budget:
                job.prefill_left -= budget * profile.prefill_rate
                budget = 0.0
                break
            budget -= needs
            self.prefilling.popleft()
            job.first_token = now + dt - budget
            if job.request.output <= 1:
                self._finish(job, job.first_token)
                continue
            job.v_start = self.clock
            self.clock_starts += self.clock
            heapq.heappush(self.running, (self.clock + job.request.output - 1, job.request.id, job))
        if self.running and budget > 0:
            batch = len(self.running)
            self.clock += profile.decode_rate(batch) / batch * budget
            while self.running and self.running[0][0] <= self.clock + 1e-9:
                _, _, job = heapq.heappop(self.running)
                self.clock_starts -= job.v_start
                self._finish(job, now + dt)


class SimFleet:
    """The replicas of one model, the gateway in front of them and the GPU pool under them."""

    def __init__(self, profile: Profile, ready: int) -> None:
        self.profile = profile
        self.replicas: list[Replica] = [Replica(0.0, READY) for _ in range(ready)]
        self.gateway: deque[Job] = deque()
        self.arrival_times: list[float] = []
        self.gpu_seconds = 0.0
        self.dropped = 0
        self._answered_gone = 0  # requests answered by replicas that have since been removed
        self.spec_changes: list[tuple[float, int]] = [(0.0, ready)]  # (time, spec.replicas) at each change

    # What the controllers read.
    @property
    def spec(self) -> int:
        return sum(1 for r in self.replicas if r.state != DRAINING)

    @property
    def ready(self) -> int:
        return sum(1 for r in self.replicas if r.state == READY)

    @property
    def unschedulable(self) -> int:
        return sum(1 for r in self.replicas if r.state == PENDING)

    def engine_waiting(self) -> int:
        """sum(vllm:num_requests_waiting) over the ready (scraped) replicas."""
        return sum(len(r.waiting) for r in self.replicas if r.state == READY)

    def arrivals_between(self, start: float, end: float) -> int:
        times = self.arrival_times
        return bisect.bisect_right(times, end) - bisect.bisect_right(times, start)

    @property
    def answered(self) -> int:
        """The gateway's `modelplex_gateway_requests_total`: requests answered so far, dropped ones (a 503)
        included. Its growth between two readings is what `Signals.arrivals` carries in a cluster."""
        return self._answered_gone + self.dropped + sum(r.answered for r in self.replicas)

    def policy_fleet(self) -> PolicyFleet:
        return PolicyFleet(self.spec, self.ready, self.unschedulable)

    def signals(self, arrivals: int) -> Signals:
        ready = [r for r in self.replicas if r.state == READY]
        kv = sum(r.kv_usage(self.profile) for r in ready) / len(ready) if ready else None
        return Signals(
            waiting=sum(len(r.waiting) for r in ready),
            running=sum(len(r.prefilling) + len(r.running) for r in ready),
            kv_cache=kv,
            gateway_queued=len(self.gateway),
            gateway_in_flight=sum(r.in_flight for r in self.replicas),
            arrivals=arrivals,
        )

    # What the controllers do.
    def scale(self, replicas: int, now: float) -> None:
        current = self.spec
        if replicas == current:
            return
        self.spec_changes.append((now, replicas))
        if replicas > current:
            self.replicas.extend(Replica(now) for _ in range(replicas - current))
            return
        order = {PENDING: 0, STARTING: 1, READY: 2}
        candidates = sorted(
            (r for r in self.replicas if r.state != DRAINING),
            key=lambda r: (order[r.state], -r.created if r.state != READY else r.in_flight),
        )
        for replica in candidates[: current - replicas]:
            if replica.state != READY:
                self.replicas.remove(replica)
                continue
            replica.state = DRAINING
            self.gateway.extendleft(reversed(replica.waiting))  # back to the gateway, oldest first
            replica.waiting.clear()

    # Time.
    def step(self, now: float, dt: float, arrivals: list[Job], count_gpu: bool) -> None:
        profile = self.profile
        used = sum(profile.gpus_per_replica for r in self.replicas if r.holds_gpu)
        for replica in self.replicas:
            if replica.state == PENDING and used + profile.gpus_per_replica <= profile.pool_gpus:
                replica.state, replica.ready_at = STARTING, now + profile.cold_start
                used += profile.gpus_per_replica
            if replica.state == STARTING and replica.ready_at <= now:
                replica.state = READY
        self.arrival_times.extend(job.request.arrival for job in arrivals)
        self.gateway.extend(arrivals)
        self._drop_expired(now)
        self._dispatch()
        for replica in self.replicas:
            if replica.state in (READY, DRAINING):
                replica.step(now, dt, profile)
        gone = [r for r in self.replicas if r.state == DRAINING and not r.in_flight]
        self._answered_gone += sum(r.answered for r in gone)
        self.replicas = [r for r in self.replicas if r.state != DRAINING or r.in_flight]
        if count_gpu:
            self.gpu_seconds += dt * sum(profile.gpus_per_replica for r in self.replicas if r.holds_gpu)

    def _drop_expired(self, now: float) -> None:
        limit = now - self.profile.deadline
        queues = [self.gateway, *(r.waiting for r in self.replicas if r.state == READY)]
        for queue in queues:
            while queue and queue[0].request.arrival < limit:
                queue.popleft().dropped = True
                self.dropped += 1

    def _dispatch(self) -> None:
        cap = self.profile.gateway_in_flight
        ready = [r for r in self.replicas if r.state == READY]
        while self.gateway and ready:
            target = min(ready, key=lambda r: r.in_flight)
            if target.in_flight >= cap:
                return
            target.waiting.append(self.gateway.popleft())

    def busy(self) -> bool:
        return bool(self.gateway) or any(r.in_flight for r in self.replicas)
