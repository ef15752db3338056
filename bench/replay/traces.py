"""Seeded arrival traces: a step, a sinusoid, an idle -> burst, and bursts shaped like the Azure code trace.

Every trace is a list of requests (arrival time, prompt tokens, output tokens). Rates are given relative to
`peak_rps`, which the caller sizes for its fleet profile, so the same shapes load a CPU and a GPU fleet
alike. Token lengths follow the Azure LLM inference traces 2023 (Patel et al., "Splitwise", ISCA 2024;
github.com/Azure/AzurePublicDataset, AzureLLMInferenceDataset2023.md): the percentile tables below were
computed from the published CSVs (conversation: 19,366 requests, code: 8,819, one hour each), which were
read while writing this and are not part of the repository.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    arrival: float  # seconds from the start of the trace
    prompt: int  # prompt tokens
    output: int  # output tokens (the first one comes out of the prefill)


@dataclass(frozen=True)
class Lengths:
    """Token lengths as percentiles (0, 5, 10, 25, 50, 75, 90, 95, 99, 100) of a published trace; sampled by
    interpolating between them (the inverse of the empirical distribution function)."""

    name: str
    prompt: tuple[int, ...]
    output: tuple[int, ...]


PERCENTILES = (0.0, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 1.0)
# Azure conversation trace 2023: prompt median 1,020, mean 1,155; output median 129, mean 211.
CONVERSATION = Lengths(
    "azure-conv-2023",
    prompt=(2, 181, 207, 396, 1020, 1189, 2734, 4083, 4142, 14050),
    output=(7, 41, 54, 85, 129, 395, 424, 451, 601, 1000),
)
# Azure code trace 2023: prompt median 1,469, mean 2,048; output median 13, mean 28.
CODE = Lengths(
    "azure-code-2023",
    prompt=(3, 75, 147, 578, 1469, 2745, 5186, 7302, 7436, 7437),
    output=(6, 6, 7, 9, 13, 24, 55, 90, 252, 1899),
)


def _quantile(table: tuple[int, ...], u: float) -> int:
    i = min(bisect.bisect_right(PERCENTILES, u) - 1, len(PERCENTILES) - 2)
    low, high = PERCENTILES[i], PERCENTILES[i + 1]
    share = (u - low) / (high - low)
    return max(1, round(table[i] + share * (table[i + 1] - table[i])))


def sample_lengths(lengths: Lengths, rng: random.Random, max_model_len: int) -> tuple[int, int]:
    """One request's (prompt, output); a prompt is cut so that prompt + output fit the model's context."""
    output = min(_quantile(lengths.output, rng.random()), max_model_len // 4)
    prompt = min(_quantile(lengths.prompt, rng.random()), max_model_len - output)
    return prompt, output


@dataclass(frozen=True)
class Trace:
    name: str
    requests: list[Request]
    seconds: float
    peak_rps: float  # the rate the trace's envelope peaks at (what static provisioning is sized for)
    min_replicas: int  # the bound every controller gets on this trace (0: the trace tests scale from zero)
    shape: str  # one line: what the arrivals do


def _poisson(rate: Callable[[float], float], peak: float, seconds: float, rng: random.Random) -> list[float]:
    """Arrival times of a Poisson process of intensity `rate(t)` <= `peak` (thinning)."""
    times: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= seconds:
            return times
        if rng.random() * peak < rate(t):
            times.append(t)


def _azure_code_bursts(peak: float, seconds: float, rng: random.Random) -> list[float]:
    """On/off bursts with the shape of the Azure code trace 2023 (measured on the published CSV in 5 s bins:
    bursts last 26 s on average, gaps between them 45 s, 56 % of 10 s bins are empty; within a burst 39 % of
    inter-arrival gaps are under 10 ms, i.e. requests come in clusters of ~1.6). Off and on durations are
    exponential with those means; in a burst, clusters of geometric size (mean 1.64) arrive as a Poisson
    process whose request rate is `peak`."""
    on_mean, off_mean, cluster_mean = 26.0, 45.0, 1.64
    cluster_rate = peak / cluster_mean
    times: list[float] = []
    t = rng.expovariate(1 / off_mean) * 0.3  # start near the beginning of a burst
    while t < seconds:
        end = min(seconds, t + rng.expovariate(1 / on_mean))
        t += rng.expovariate(cluster_rate)
        while t < end:
            size = 1
            while rng.random() > 1 / cluster_mean:
                size += 1
            times.extend(t + 0.003 * i for i in range(size))
            t += rng.expovariate(cluster_rate)
        t = end + rng.expovariate(1 / off_mean)
    return [x for x in times if x < seconds]


TRACES = ("step", "sinusoid", "idle_burst", "bursty")


def make(name: str, minutes: float, peak_rps: float, seed: int, max_model_len: int) -> Trace:
    """The named trace, `minutes` long, rates relative to `peak_rps`; the same seed gives the same trace."""
    seconds = minutes * 60
    rng = random.Random(f"{name}:{seed}")
    lengths = CONVERSATION
    min_replicas = 1
    if name == "step":
        low = 0.2 * peak_rps

        def step(t: float) -> float:
            return peak_rps if 0.25 * seconds <= t < 0.6 * seconds else low

        times = _poisson(step, peak_rps, seconds, rng)
        shape = "Poisson; 20 % of peak, a step to 100 % from 25 % to 60 % of the trace, back to 20 %"
    elif name == "sinusoid":
        period = seconds / 2

        def sine(t: float) -> float:
            return peak_rps * (0.55 - 0.45 * math.cos(2 * math.pi * t / period))

        times = _poisson(sine, peak_rps, seconds, rng)
        shape = f"Poisson; rate 10-100 % of peak, a sine of period {period / 60:.0f} min (a compressed day)"
    elif name == "idle_burst":
        min_replicas = 0

        def idle_burst(t: float) -> float:
            if t < 0.1 * seconds:
                return 0.1 * peak_rps
            return peak_rps if 0.6 * seconds <= t < 0.75 * seconds else 0.0

        times = _poisson(idle_burst, peak_rps, seconds, rng)
        shape = "Poisson; 10 % of peak for 10 % of the trace, idle, a burst at 100 % from 60 % to 75 %, idle"
    elif name == "bursty":
        lengths = CODE
        times = _azure_code_bursts(peak_rps, seconds, rng)
        shape = "Azure code 2023 shape: on/off bursts (26 s on, 45 s off, clusters of ~1.6)"
    else:
        raise ValueError(f"unknown trace {name!r}; known: {', '.join(TRACES)}")
    requests = []
    for i, t in enumerate(times):
        prompt, output = sample_lengths(lengths, rng, max_model_len)
        requests.append(Request(i, t, prompt, output))
    return Trace(name, requests, seconds, peak_rps, min_replicas, f"{shape} [{lengths.name} lengths]")


def mean_lengths(name: str, max_model_len: int, samples: int = 20_000) -> tuple[float, float]:
    """Mean (prompt, output) tokens of a trace's length distribution, as cut for the model's context."""
    lengths = CODE if name == "bursty" else CONVERSATION
    rng = random.Random(f"means:{name}")
    pairs = [sample_lengths(lengths, rng, max_model_len) for _ in range(samples)]
    return sum(p for p, _ in pairs) / samples, sum(o for _, o in pairs) / samples
