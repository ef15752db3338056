"""Connection abuse: normal requests while 10,000 idle connections and 100 slow-header attackers are held.

Starts the fixed-latency backend and `modelplex gateway run` (auth + limits + metering + journal on) as
bench/gateway_overhead.py does, measures normal requests at a fixed rate alone, then again while
- `--idle` connections (default 10,000) have each made one request and stay open, idle (kept alive),
- `--slow` slow-header attackers (default 100) send one header byte every second and connect again
  whenever the gateway closes them (slowloris),
and prints added latency, the gateway's RSS and open descriptors, and how the attackers were answered.
Asserts nothing. Usage: python bench/connection_abuse.py [--seconds 10] [--idle 10000] [--slow 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import uvloop
from gateway_overhead import ROOT, body, config, free_port, open_loop, pct, start, wait_up


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def idle_connection(port: int, opened: list[asyncio.StreamWriter]) -> None:
    """One request, then the connection is kept, silent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: bench\r\n\r\n")
    await reader.readuntil(b'{"status":"ok"}')
    opened.append(writer)


async def slow_attacker(port: int, until: float, answers: Counter[str]) -> None:
    """Sends a header byte a second; connects again whenever the gateway closes it."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nhost: bench\r\nx-slow: ")
            while time.monotonic() < until:
                await asyncio.sleep(1)
                writer.write(b"a")
                await writer.drain()
                if reader.at_eof() or (reply := await _maybe_read(reader)):
                    answers[reply.split(b" ", 2)[1].decode() if reply else "closed"] += 1
                    break
            writer.close()
        except (ConnectionError, OSError):
            answers["reset"] += 1
            await asyncio.sleep(0.1)


async def _maybe_read(reader: asyncio.StreamReader) -> bytes:
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(reader.read(4096), 0.01)
    return b""


async def measure(backend: int, gateway: int, pid: int, options: argparse.Namespace) -> None:
    direct = f"http://127.0.0.1:{backend}/v1/chat/completions"
    via = f"http://127.0.0.1:{gateway}/v1/chat/completions"
    data = body(False)
    rps, seconds = options.rps, options.seconds
    base, calm = await open_loop(direct, data, rps, seconds), await open_loop(via, data, rps, seconds)
    print(
        f"calm:   {rps} RPS added p50 {pct(calm, 50) - pct(base, 50):5.2f} ms p99 "
        f"{pct(calm, 99) - pct(base, 99):5.2f} ms | RSS {rss_mib(pid):6.1f} MiB, {descriptors(pid)} fds"
    )
    opened: list[asyncio.StreamWriter] = []
    started = time.monotonic()
    for first in range(0, options.idle, 500):
        await asyncio.gather(
            *(idle_connection(gateway, opened) for _ in range(first, min(options.idle, first + 500)))
        )
    print(f"opened {len(opened)} idle kept-alive connections in {time.monotonic() - started:.1f} s")
    answers: Counter[str] = Counter()
    until = time.monotonic() + seconds + 15
    attackers = [asyncio.create_task(slow_attacker(gateway, until, answers)) for _ in range(options.slow)]
    await asyncio.sleep(12)  # past the header timeout: every attacker has been cut off once
    attacked = await open_loop(via, data, rps, seconds)
    base_again = await open_loop(direct, data, rps, 3)
    print(
        f"attack: {rps} RPS added p50 {pct(attacked, 50) - pct(base_again, 50):5.2f} ms p99 "
        f"{pct(attacked, 99) - pct(base_again, 99):5.2f} ms | RSS {rss_mib(pid):6.1f} MiB, "
        f"{descriptors(pid)} fds | {len(opened)} idle + {options.slow} slow held"
    )
    await asyncio.gather(*attackers)
    print(f"slow attackers were answered: {dict(answers)}")
    for writer in opened:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rps", type=int, default=100)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--slow", type=int, default=100)
    options = parser.parse_args()
    backend_port, gateway_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        backend = start([sys.executable, str(ROOT / "gateway_backend.py"), str(backend_port), "5"])
        env = {"MODELPLEX_GATEWAY_JOURNAL_DIR": str(Path(tmp) / "journal")}
        cfg = config(Path(tmp), backend_port)
        cli = str(Path(sys.executable).parent / "modelplex")
        gateway = start([cli, "gateway", "run", "--port", str(gateway_port), "--config", str(cfg)], env)
        try:
            wait_up(backend_port)
            wait_up(gateway_port)
            print(f"backend latency 5 ms, {options.seconds} s/point, {os.cpu_count()} cores")
            uvloop.run(measure(backend_port, gateway_port, gateway.pid, options))
        finally:
            for process in (gateway, backend):
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    main()
