"""What a second local replica adds: tokens/s of `modelplex up` with N engine replicas, closed loop.

    .venv/bin/python bench/local_replicas.py [--replicas 2] [--clients 8] [--requests 64] [--max-tokens 64]
    .venv/bin/python bench/local_replicas.py --engine-binding auto   # every engine binds itself (vLLM's)

Starts `modelplex up` with the SmolLM2 example at `--replicas`, waits until every replica is ready
(printing how long that took), warms each one, then `--clients` threads of the official `openai`
client send `--requests` chat completions of exactly `--max-tokens` tokens (`ignore_eos`) back to
back through the gateway, and it prints output tokens/s and request latency p50/p95. By default the
local runtime gives each engine its own cores (local/cpu_slots.py); `--engine-binding auto` sets
`VLLM_CPU_OMP_THREADS_BIND=auto` for every engine, which is what the runtime did before (each engine
computes on the first cores, the same ones).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from openai import OpenAI

import modelplex
from modelplex.processes import free_port

MODELPLEX = str(Path(sys.executable).parent / "modelplex")
EXAMPLE = Path(modelplex.__file__).parent / "deploy" / "examples" / "local-smollm2.yaml"
QUESTION = "Write a long story about a lighthouse keeper and the sea."


def _workers(state_dir: Path) -> list[dict[str, Any]]:
    try:
        status = json.loads((state_dir / "local" / "status.json").read_text())
    except (OSError, ValueError):
        return []
    workers: list[dict[str, Any]] = status.get("smollm2", {}).get("workers", [])
    return workers


def _up(
    state_dir: Path, replicas: int, binding: str | None, dtype: str | None, port: int
) -> tuple[subprocess.Popen[str], str]:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["spec"]["replicas"] = replicas
    if dtype is not None:
        manifest["spec"]["engine"]["dtype"] = dtype
    file = state_dir / "smollm2.yaml"
    file.write_text(yaml.safe_dump(manifest))
    env = {
        **os.environ,
        "MODELPLEX_LOCAL_STATE_DIR": str(state_dir),
        "MODELPLEX_BILLING_STATE_DIR": str(state_dir),
    }
    if binding is not None:
        env["VLLM_CPU_OMP_THREADS_BIND"] = binding
    command = [MODELPLEX, "up", "-f", str(file), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        found = re.match(r"^API key: (mpx-\S+)$", line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
            return process, found.group(1)
    raise RuntimeError(f"`modelplex up` exited ({process.wait()}) without printing a key")


def _ask(client: OpenAI, max_tokens: int) -> tuple[float, int]:
    began = time.perf_counter()
    answer = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=max_tokens,
        extra_body={"ignore_eos": True},
    )
    assert answer.usage is not None
    return time.perf_counter() - began, answer.usage.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--dtype", default=None, help="the engine's dtype (default: the example's)")
    parser.add_argument("--engine-binding", default=None, help="VLLM_CPU_OMP_THREADS_BIND for every engine")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        state_dir, port = Path(scratch), free_port()
        began = time.monotonic()
        process, key = _up(state_dir, args.replicas, args.engine_binding, args.dtype, port)
        try:
            while sum(1 for worker in _workers(state_dir) if worker["ready"]) < args.replicas:
                if process.poll() is not None or time.monotonic() - began > 1800:
                    raise RuntimeError("the replicas did not all become ready")
                time.sleep(1)
            print(f"{args.replicas} replica(s) ready after {time.monotonic() - began:.0f} s", flush=True)
            client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, timeout=600, max_retries=0)
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(lambda _: _ask(client, 8), range(2 * args.replicas)))  # warm every engine
                began_load = time.perf_counter()
                results = list(pool.map(lambda _: _ask(client, args.max_tokens), range(args.requests)))
                wall = time.perf_counter() - began_load
            latencies = sorted(latency for latency, _ in results)
            tokens = sum(count for _, count in results)
            p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
            binding = args.engine_binding or "per replica (local/cpu_slots.py)"
            print(
                f"replicas {args.replicas}, engine binding {binding}, {args.clients} clients, "
                f"{args.requests} x {args.max_tokens} tokens"
            )
            print(f"wall {wall:.1f} s, {tokens / wall:.1f} output tokens/s, {args.requests / wall:.2f} req/s")
            print(f"latency p50 {statistics.median(latencies):.2f} s, p95 {p95:.2f} s")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)


if __name__ == "__main__":
    main()
