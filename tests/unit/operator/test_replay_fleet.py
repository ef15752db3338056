"""The autoscaler replay's simulated fleet (bench/replay/), held to the figures it was calibrated from.

Times here are simulated seconds, never the wall clock.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from replay.fleet import Job, SimFleet
from replay.profiles import CPU, GPU
from replay.traces import Request, make

STEP = 0.25


def _jobs(count: int, prompt: int, output: int, at: float = 0.0) -> list[Job]:
    return [Job(Request(i, at, prompt, output)) for i in range(count)]


def _run(fleet: SimFleet, jobs: list[Job], seconds: float) -> None:
    now, pending = 0.0, sorted(jobs, key=lambda j: j.request.arrival)
    while now < seconds:
        arrived = [j for j in pending if j.request.arrival <= now]
        pending = pending[len(arrived) :]
        fleet.step(now, STEP, arrived, count_gpu=True)
        now += STEP


def test_decode_curve_passes_through_its_calibration_points() -> None:
    for profile in (CPU, GPU):
        assert profile.decode_rate(1) == pytest.approx(profile.decode_at_one)
        assert profile.decode_rate(profile.max_num_seqs) == pytest.approx(profile.decode_at_max)
        rates = [profile.decode_rate(b) for b in range(1, profile.max_num_seqs + 1)]
        assert rates == sorted(rates)  # more sequences, more tokens/s; less per sequence
        assert rates[-1] / profile.max_num_seqs < rates[0]


def test_eight_concurrent_completions_take_what_the_cpu_engine_measured() -> None:
    # docs/benchmarks.md: 8 concurrent 64-token completions, request p50 2.06-2.11 s, 242-247 tokens/s.
    fleet = SimFleet(CPU, ready=1)
    jobs = _jobs(8, prompt=20, output=64)
    _run(fleet, jobs, 5.0)
    latencies = [j.finished for j in jobs if j.finished is not None]
    assert len(latencies) == 8
    assert statistics.median(latencies) == pytest.approx(2.1, abs=0.3)
    assert all(j.ttft is not None and j.ttft < 0.1 for j in jobs)
    assert fleet.answered == 8  # what the gateway's requests counter (Signals.arrivals) counts


def test_answered_counts_requests_served_by_a_replica_since_removed_and_drops() -> None:
    fleet = SimFleet(CPU, ready=1)
    _run(fleet, _jobs(2, prompt=20, output=8), 2.0)
    fleet.scale(0, 2.0)
    _run(fleet, _jobs(1, prompt=20, output=8, at=0.0), CPU.deadline + 1)
    assert (fleet.answered, fleet.dropped) == (3, 1)


def test_requests_beyond_max_num_seqs_wait_in_the_engine_queue() -> None:
    fleet = SimFleet(CPU, ready=1)
    jobs = _jobs(16, prompt=20, output=64)
    _run(fleet, jobs, STEP)
    assert fleet.engine_waiting() == 8
    assert fleet.signals(16).running == 8
    _run(fleet, [], 6.0)
    second = sorted(j.ttft for j in jobs[8:] if j.ttft is not None)
    assert len(second) == 8
    assert second[0] >= 1.8  # served once the first batch is done, ~2 s later


def test_the_kv_cache_fills_with_tokens_resident() -> None:
    fleet = SimFleet(CPU, ready=1)
    _run(fleet, _jobs(8, prompt=1500, output=400), 10.0)
    usage = fleet.signals(0).kv_cache
    assert usage is not None
    assert 12_000 / CPU.kv_capacity < usage < 15_200 / CPU.kv_capacity  # 8 prompts plus what they generated


def test_replicas_beyond_the_gpu_pool_stay_pending_and_new_ones_serve_after_the_cold_start() -> None:
    fleet = SimFleet(GPU, ready=1)
    fleet.scale(GPU.pool_gpus + 2, 0.0)
    _run(fleet, [], STEP)
    assert (fleet.spec, fleet.ready, fleet.unschedulable) == (10, 1, 2)
    _run(fleet, [], GPU.cold_start + STEP)
    assert (fleet.ready, fleet.unschedulable) == (8, 2)
    assert fleet.gpu_seconds == pytest.approx(8 * GPU.cold_start, rel=0.02)  # pending replicas hold no GPU


def test_a_request_with_no_replica_coming_is_dropped_after_the_deadline() -> None:
    fleet = SimFleet(CPU, ready=0)
    jobs = _jobs(3, prompt=20, output=8)
    _run(fleet, jobs, CPU.deadline + 1)
    assert fleet.dropped == 3
    assert all(j.dropped for j in jobs)


def test_traces_are_seeded_and_keep_the_published_medians() -> None:
    first = make("sinusoid", 30, 5.0, seed=7, max_model_len=8192)
    again = make("sinusoid", 30, 5.0, seed=7, max_model_len=8192)
    assert first.requests == again.requests
    assert statistics.median(r.prompt for r in first.requests) == pytest.approx(1020, rel=0.1)
    assert statistics.median(r.output for r in first.requests) == pytest.approx(129, rel=0.1)
    code = make("bursty", 30, 5.0, seed=7, max_model_len=8192)
    assert statistics.median(r.output for r in code.requests) == pytest.approx(13, rel=0.15)
