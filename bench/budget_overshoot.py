"""Budget overshoot: how far past its monthly token budget a tenant gets, under a burst and back to back.

Starts a fixed-latency backend (bench/gateway_backend.py), a ledger on a fresh SQLite file, and
`modelplex gateway run` on it; a tenant whose plan allows `--budget` tokens a month then sends
`--burst` concurrent requests, and afterwards requests one after another until refused. Prints what
was served and billed (read back from the ledger) against the budget. Asserts nothing.
Usage: python bench/budget_overshoot.py [--budget 2000] [--burst 100] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from gateway_overhead import config, free_port, start, wait_up

ROOT = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "modelplex")
BODY = json.dumps(
    {"model": "bench", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}
).encode()


def modelplex(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [CLI, *args], env={**os.environ, **env}, check=True, capture_output=True, text=True
    ).stdout


async def post(session: aiohttp.ClientSession, url: str, key: str) -> int:
    async with session.post(url, data=BODY, headers={"authorization": f"Bearer {key}"}) as response:
        await response.read()
        return response.status


async def traffic(url: str, key: str, burst: int) -> tuple[list[int], list[int]]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        burst_codes = list(await asyncio.gather(*(post(session, url, key) for _ in range(burst))))
        sequential: list[int] = []
        while len(sequential) < 10_000 and (not sequential or sequential[-1] == 200):
            sequential.append(await post(session, url, key))
        return burst_codes, sequential


def billed_tokens(env: dict[str, str], served: int) -> int:
    deadline = time.monotonic() + 30
    while True:
        rows = json.loads(modelplex(env, "usage", "--tenant", "bench", "--json"))
        tokens = sum(int(r["promptTokens"]) + int(r["completionTokens"]) for r in rows)
        requests = sum(int(r["requests"]) for r in rows)
        if requests >= served or time.monotonic() > deadline:
            return tokens
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    options = parser.parse_args()
    backend_port, gateway_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "MODELPLEX_DATABASE_URL": f"sqlite:///{tmp}/ledger.db",
            "MODELPLEX_BILLING_STATE_DIR": f"{tmp}/state",
            "MODELPLEX_BILLING_KEY_PEPPER": "bench-pepper-0123456789abcdef",
            "MODELPLEX_GATEWAY_JOURNAL_DIR": f"{tmp}/journal",
        }
        modelplex(env, "ledger", "migrate")
        modelplex(env, "plans", "set", "small", "--monthly-tokens", str(options.budget))
        modelplex(env, "tenants", "create", "bench", "--plan", "small")
        key = modelplex(env, "keys", "create", "--tenant", "bench").splitlines()[-1]
        cfg = config(Path(tmp), backend_port)
        text = json.loads(cfg.read_text())
        cfg.write_text(json.dumps({"models": text["models"]}))  # tenants come from the ledger
        backend = start(
            [sys.executable, str(ROOT / "gateway_backend.py"), str(backend_port), str(options.latency_ms)]
        )
        gateway = start([CLI, "gateway", "run", "--port", str(gateway_port), "--config", str(cfg)], env)
        try:
            wait_up(backend_port)
            wait_up(gateway_port)
            url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
            burst, sequential = asyncio.run(traffic(url, key, options.burst))
            served = burst.count(200) + sequential.count(200)
            billed = billed_tokens(env, served)
        finally:
            for process in (gateway, backend):
                process.terminate()
                process.wait(30)
    print(f"budget {options.budget} tokens; burst of {options.burst} concurrent, then back to back")
    print(f"burst: {burst.count(200)} served, {len(burst) - burst.count(200)} refused")
    print(f"back to back: {sequential.count(200)} served before the first refusal")
    over = billed - options.budget
    ratio = billed / options.budget
    print(f"billed {billed} tokens for {served} requests: {over:+d} against the budget ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
