"""Engine throughput: generated tokens/s of the local vLLM engine at 1 and 8 concurrent requests, direct vs
through the gateway, streaming and not.

Starts the engine that `make engine` installed (SmolLM2 as `smollm2`) and `modelplex gateway run` in front
of it (static discovery file, one tenant key; auth, limits, metering and journal on), all on 127.0.0.1.
Every request is a completion of exactly --max-tokens tokens (ignore_eos). Prints numbers; asserts nothing.
Usage: python bench/engine_throughput.py [--requests 16] [--max-tokens 64] [--omp-threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from modelplex.engine import install as engines
from modelplex.engine.models.prepare import model_dir
from modelplex.engine.models.registry import lookup
from modelplex.processes import Component, free_port, start, stop, wait_until

KEY = "mpx-bench-engine"
PROMPT = "Write a short story about a lighthouse keeper and a storm."


@dataclass
class Result:
    tokens: int
    seconds: float  # whole request
    ttft: float | None  # streaming: until the first text chunk


async def one(client: httpx.AsyncClient, url: str, stream: bool, max_tokens: int) -> Result:
    body: dict[str, object] = {
        "model": "smollm2",
        "prompt": PROMPT,
        "max_tokens": max_tokens,
        "ignore_eos": True,
    }
    began = time.perf_counter()
    if not stream:
        response = await client.post(url, json=body)
        response.raise_for_status()
        return Result(response.json()["usage"]["completion_tokens"], time.perf_counter() - began, None)
    body |= {"stream": True, "stream_options": {"include_usage": True}}
    ttft, tokens = None, 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if ttft is None and chunk["choices"] and chunk["choices"][0]["text"]:
                ttft = time.perf_counter() - began
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return Result(tokens, time.perf_counter() - began, ttft)


async def drive(url: str, concurrency: int, requests: int, stream: bool, max_tokens: int) -> str:
    """`concurrency` clients each send requests back to back until `requests` are done; one summary line."""
    headers = {"authorization": f"Bearer {KEY}"}
    queue = list(range(requests))
    results: list[Result] = []
    async with httpx.AsyncClient(headers=headers, timeout=300) as client:

        async def worker() -> None:
            while queue:
                queue.pop()
                results.append(await one(client, url, stream, max_tokens))

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began
    tokens = sum(r.tokens for r in results)
    latency = statistics.median(r.seconds for r in results)
    ttfts = [r.ttft for r in results if r.ttft is not None]
    ttft = f"  TTFT p50 {statistics.median(ttfts) * 1000:6.0f} ms" if ttfts else ""
    rate = f"{tokens / wall:7.1f} tokens/s  ({tokens} tokens in {wall:5.1f} s"
    return f"{rate}; request p50 {latency:5.2f} s{ttft})"


def start_engine(settings: engines.EngineSettings, logs: Path) -> tuple[Component, str]:
    engine = engines.require(settings)
    port = free_port()
    argv = [*engine.server_command(), "--model", str(model_dir(settings, lookup("smollm2")))]
    argv += [
        "--served-model-name",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
    ]
    process = start("vllm", argv, logs, env=engines.environment(settings, engine.device))
    url = f"http://127.0.0.1:{port}"
    began = time.monotonic()
    wait_until("vLLM /health", lambda: httpx.get(f"{url}/health").status_code == 200, 600, [process])
    print(
        f"engine: {engine.distribution} {engine.version}, started in {time.monotonic() - began:.0f} s",
        flush=True,
    )
    return process, url


def start_gateway(
    engine_urls: list[str],
    work: Path,
    routing: str | None = None,
    name: str = "gateway",
    settings: dict[str, str] | None = None,
) -> tuple[Component, str]:
    """`modelplex gateway run` on a static discovery file: `smollm2` on `engine_urls` (routed by the
    `routing` policy, else the default) as replica-0, replica-1, ... (ids that do not depend on the
    ports, so a hash ring over them is the same in every run), one tenant key; its log is WORK/NAME.log.
    `settings`: more MODELPLEX_GATEWAY_* variables."""
    config = work / f"{name}-discovery.yaml"
    endpoints = [{"url": url, "id": f"replica-{i}"} for i, url in enumerate(engine_urls)]
    model: dict[str, object] = {"name": "smollm2", "endpoints": endpoints}
    if routing is not None:
        model["routing"] = routing
    config.write_text(yaml.safe_dump({"models": [model], "tenants": [{"name": "bench", "keys": [KEY]}]}))
    port = free_port()
    cli = Path(sys.executable).parent / "modelplex"
    env = {"MODELPLEX_GATEWAY_JOURNAL_DIR": str(work / f"{name}-journal"), **(settings or {})}
    argv = [str(cli), "gateway", "run", "--port", str(port), "--config", str(config)]
    process = start(name, argv, work, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_until("gateway /healthz", lambda: httpx.get(f"{url}/healthz").status_code == 200, 60, [process])
    return process, url


async def measure(direct: str, gateway: str, args: argparse.Namespace) -> None:
    await drive(f"{direct}/v1/completions", 2, 4, False, 16)  # warm-up: first requests compile kernels
    for stream in (False, True):
        for concurrency in (1, 8):
            requests = max(args.requests // (1 if concurrency > 1 else 2), concurrency)
            for name, base in (("direct ", direct), ("gateway", gateway)):
                line = await drive(f"{base}/v1/completions", concurrency, requests, stream, args.max_tokens)
                mode = "stream" if stream else "plain "
                print(f"{mode} concurrency {concurrency}  {name}  {line}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=16, help="requests per run at concurrency 8 (half at 1)"
    )
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--omp-threads", type=int, default=None, help="OMP_NUM_THREADS for the engine")
    args = parser.parse_args()
    settings = engines.EngineSettings(omp_threads=args.omp_threads)
    with tempfile.TemporaryDirectory(prefix="mpx-bench-engine-") as tmp:
        processes: list[Component] = []
        try:
            engine, direct = start_engine(settings, Path(tmp))
            processes.append(engine)
            gateway, via = start_gateway([direct], Path(tmp))
            processes.append(gateway)
            asyncio.run(measure(direct, via, args))
        finally:
            stop(processes, grace_seconds=30)


if __name__ == "__main__":
    main()
