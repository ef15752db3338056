"""Soak: the gateway under a steady mix for a long time; are its memory, descriptors and journal flat?

Starts two fixed-latency backends (bench/gateway_backend.py) as two replicas of one model, a ledger on
a fresh SQLite file, and `modelplex gateway run` on it. Two tenants send an open-loop mix: whole
answers, streams, streams the client abandons after two chunks, whole answers it abandons before they
come, and a tenant over its RPM limit (429s). Every `--every` seconds it prints the gateway's RSS, open
file descriptors and journal size; at the end, what was sent, answered and billed. Asserts nothing.
Usage: python bench/soak.py [--minutes 30] [--rps 40] [--every 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
from budget_overshoot import modelplex
from gateway_overhead import free_port, start, wait_up

ROOT = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "modelplex")
CHAT = {"model": "bench", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}


def sample(pid: int, journal: Path) -> tuple[float, int, int]:
    """RSS in MiB, open descriptors, journal bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    size = sum(p.stat().st_size for p in journal.iterdir() if p.is_file())
    return rss_kib / 1024, fds, size


async def one(session: aiohttp.ClientSession, url: str, key: str, kind: str, outcomes: Counter[str]) -> None:
    body = {**CHAT, "stream": kind.startswith("stream")}
    headers = {"authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=0.02 if kind == "abandoned-whole" else 30)
    try:
        async with session.post(url, json=body, headers=headers, timeout=timeout) as response:
            if kind == "abandoned-stream" and response.status == 200:
                await response.content.readline()
                await response.content.readline()
                outcomes["abandoned"] += 1
                return  # leaving the block closes the connection mid-stream
            await response.read()
            outcomes[str(response.status)] += 1
    except TimeoutError:
        outcomes["abandoned"] += 1
    except aiohttp.ClientError as error:
        outcomes[type(error).__name__] += 1


async def drive(
    url: str, keys: dict[str, str], rps: float, seconds: float, report: Callable[[float], None]
) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    kinds = ["whole"] * 4 + ["stream"] * 4 + ["abandoned-stream", "abandoned-whole"]
    rng = random.Random(7)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for i in range(int(rps * seconds)):
            delay = start + i / rps - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = keys["limited"] if rng.random() < 0.2 else keys["steady"]
            task = asyncio.ensure_future(one(session, url, key, rng.choice(kinds), outcomes))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            report(time.perf_counter() - start)
        await asyncio.gather(*tasks)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rps", type=float, default=40.0)
    parser.add_argument("--every", type=float, default=60.0)
    options = parser.parse_args()
    ports = [free_port(), free_port()]
    gateway_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal"
        env = {
            "MODELPLEX_DATABASE_URL": f"sqlite:///{tmp}/ledger.db",
            "MODELPLEX_BILLING_STATE_DIR": f"{tmp}/state",
            "MODELPLEX_BILLING_KEY_PEPPER": "bench-pepper-0123456789abcdef",
            "MODELPLEX_GATEWAY_JOURNAL_DIR": str(journal),
            "MODELPLEX_GATEWAY_JOURNAL_SEGMENT_BYTES": str(1024 * 1024),  # rotate (and delete) often
        }
        modelplex(env, "ledger", "migrate")
        modelplex(env, "plans", "set", "limited", "--rpm", "120", "--monthly-tokens", str(10**12))
        modelplex(env, "tenants", "create", "steady")
        modelplex(env, "tenants", "create", "limited", "--plan", "limited")
        keys = {
            name: modelplex(env, "keys", "create", "--tenant", name).splitlines()[-1]
            for name in ("steady", "limited")
        }
        endpoints = [{"url": f"http://127.0.0.1:{port}"} for port in ports]
        config = Path(tmp) / "gateway.json"
        config.write_text(json.dumps({"models": [{"name": "bench", "endpoints": endpoints}]}))
        backend = [sys.executable, str(ROOT / "gateway_backend.py")]
        backends = [start([*backend, str(port), "50"]) for port in ports]
        gateway = start([CLI, "gateway", "run", "--port", str(gateway_port), "--config", str(config)], env)
        try:
            for port in [*ports, gateway_port]:
                wait_up(port)
            print(f"soak: {options.minutes:g} min, {options.rps:g} RPS, 2 replicas, {os.cpu_count()} cores")
            print(f"{'minute':>7} {'RSS MiB':>8} {'fds':>5} {'journal KiB':>12}")
            next_report = [0.0]

            def report(elapsed: float) -> None:
                if elapsed >= next_report[0]:
                    rss, fds, size = sample(gateway.pid, journal)
                    print(f"{elapsed / 60:7.1f} {rss:8.1f} {fds:5d} {size / 1024:12.1f}", flush=True)
                    next_report[0] += options.every

            url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
            outcomes = asyncio.run(drive(url, keys, options.rps, options.minutes * 60, report))
            time.sleep(3)  # let the last events ship
            rss, fds, size = sample(gateway.pid, journal)
            print(f"{'end':>7} {rss:8.1f} {fds:5d} {size / 1024:12.1f}")
            rows = json.loads(modelplex(env, "usage", "--json"))
            billed = sum(int(r["requests"]) for r in rows)
        finally:
            for process in (gateway, *backends):
                process.terminate()
                process.wait(30)
    sent = sum(outcomes.values())
    print(f"sent {sent}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"billed {billed} requests (answered 200 + abandoned after reaching a replica)")


if __name__ == "__main__":
    main()
