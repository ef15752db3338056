"""Gateway overhead: added latency (gateway minus direct, from the client) at fixed rates, and max RPS.

Starts a fixed-latency backend (bench/gateway_backend.py) and `modelplex gateway run` (one worker process,
auth + limits + metering + journal on) on 127.0.0.1, then drives both with an open-loop aiohttp client.
Prints numbers; asserts nothing. Usage: python bench/gateway_overhead.py [--seconds 5] [--latency-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop

KEY = "mpx-bench-key"
ROOT = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body(stream: bool) -> bytes:
    payload: dict[str, object] = {"model": "bench", "messages": [{"role": "user", "content": "hello there"}]}
    if stream:
        payload["stream"] = True
    return json.dumps(payload).encode()


async def one(session: aiohttp.ClientSession, url: str, data: bytes) -> float:
    started = time.perf_counter()
    async with session.post(url, data=data, headers={"authorization": f"Bearer {KEY}"}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return time.perf_counter() - started


async def open_loop(url: str, data: bytes, rps: int, seconds: float) -> list[float]:
    """Requests start on a fixed schedule whatever the answers do (no coordinated omission)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, url, data) for _ in range(20)))  # warm the pools
        tasks = []
        start = time.perf_counter()
        for i in range(int(rps * seconds)):
            delay = start + i / rps - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(session, url, data)))
        return list(await asyncio.gather(*tasks))


async def closed_loop(url: str, data: bytes, workers: int, seconds: float) -> float:
    connector = aiohttp.TCPConnector(limit=0)
    done = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await one(session, url, data)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return done / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def config(directory: Path, backend: int) -> Path:
    limits = {"requests_per_minute": 10**9, "tokens_per_minute": 10**12, "concurrent_requests": 10**6}
    text = {
        "models": [{"name": "bench", "endpoints": [{"url": f"http://127.0.0.1:{backend}"}]}],
        "tenants": [{"name": "bench", "keys": [KEY], "limits": limits}],
    }
    path = directory / "gateway.json"
    path.write_text(json.dumps(text))
    return path


async def measure(direct: str, gateway: str, gateway_pid: int, seconds: float) -> None:
    for stream in (False, True):
        data = body(stream)
        kind = "streaming" if stream else "non-streaming"
        for rps in (100, 500):
            base = await open_loop(direct, data, rps, seconds)
            cpu_before = cpu_seconds(gateway_pid)
            via = await open_loop(gateway, data, rps, seconds)
            cpu_ms = (cpu_seconds(gateway_pid) - cpu_before) * 1000 / (len(via) + 20)  # + the warm-up
            print(
                f"{kind:14} {rps:4} RPS  direct p50 {pct(base, 50):6.2f} ms p99 {pct(base, 99):6.2f} ms | "
                f"gateway p50 {pct(via, 50):6.2f} ms p99 {pct(via, 99):6.2f} ms | "
                f"added p50 {pct(via, 50) - pct(base, 50):5.2f} ms p99 {pct(via, 99) - pct(base, 99):5.2f} ms"
                f" | gateway CPU {cpu_ms:4.2f} ms/request"
            )
        print(
            f"{kind:14} max sustained: {await closed_loop(gateway, data, 64, seconds):7.0f} RPS via gateway, "
            f"{await closed_loop(direct, data, 64, seconds):7.0f} RPS direct"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    options = parser.parse_args()
    backend_port, gateway_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        backend = start(
            [sys.executable, str(ROOT / "gateway_backend.py"), str(backend_port), str(options.latency_ms)]
        )
        env = {"MODELPLEX_GATEWAY_JOURNAL_DIR": str(Path(tmp) / "journal")}
        cfg = config(Path(tmp), backend_port)
        cli = str(Path(sys.executable).parent / "modelplex")
        gateway = start([cli, "gateway", "run", "--port", str(gateway_port), "--config", str(cfg)], env)
        try:
            wait_up(backend_port)
            wait_up(gateway_port)
            path = "/v1/chat/completions"
            print(
                f"backend latency {options.latency_ms} ms, {options.seconds} s/point, {os.cpu_count()} cores"
            )
            uvloop.run(
                measure(
                    f"http://127.0.0.1:{backend_port}{path}",
                    f"http://127.0.0.1:{gateway_port}{path}",
                    gateway.pid,
                    options.seconds,
                )
            )
        finally:
            for process in (gateway, backend):
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    main()
