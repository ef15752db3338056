"""Hostile clients without a key against a live `modelplex gateway run`: the corpus of hostile requests
gets no 5xx, slow-header attackers and idle connections are held within bounds, and tenants' requests
are served throughout. (The limits one by one: tests/unit/gateway/test_connection_limits.py.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from mpxtest.gatewayproc import cli, create_key, start_gateway, write_config
from mpxtest.hostile_http import MALFORMED, ODD, first_status
from mpxtest.ledger import ADMIN_TOKEN, PEPPER
from mpxtest.upstream import World

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 4}
SLOW_ATTACKERS = 100
IDLE = 1000
RSS_BOUND_MIB = 400


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


async def _slow_attacker(port: int, answers: list[bytes]) -> None:
    """A header byte every 0.3 s until the gateway answers and closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
    while not reader.at_eof():
        await asyncio.sleep(0.3)
        writer.write(b"a")
        try:
            answers.append(await asyncio.wait_for(reader.read(4096), 0.01))
            break
        except TimeoutError:
            continue
    writer.close()


async def _attack_while_serving(port: int, url: str, key: str) -> tuple[list[bytes], list[int]]:
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IDLE)]
    answers: list[bytes] = []
    attackers = asyncio.gather(*(_slow_attacker(port, answers) for _ in range(SLOW_ATTACKERS)))
    served: list[int] = []
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
        while len(answers) < SLOW_ATTACKERS and len(served) < 500:
            served.append((await client.post(url + "/v1/chat/completions", json=CHAT)).status_code)
    await attackers
    for _, writer in idle:
        writer.close()
    return answers, served


def test_hostile_clients_get_no_5xx_and_tenants_are_served_throughout(world: World, tmp_path: Path) -> None:
    replica = world.replica()
    env = {
        "MODELPLEX_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "MODELPLEX_BILLING_STATE_DIR": str(tmp_path / "state"),
        "MODELPLEX_BILLING_KEY_PEPPER": PEPPER,
        "MODELPLEX_BILLING_ADMIN_TOKEN": ADMIN_TOKEN,
        "MODELPLEX_GATEWAY_HEADER_TIMEOUT_SECONDS": "2",
    }
    cli(env, "tenants", "create", "acme")
    key = create_key(env, "acme")
    config = write_config(tmp_path / "gateway.json", "m1", [replica.url])
    gateway = start_gateway(config, tmp_path / "journal", env, tmp_path / "gateway.log")
    try:
        statuses = {request: first_status(gateway.url, request) for request in MALFORMED + ODD}
        assert all(statuses[request] == 400 for request in MALFORMED), statuses
        server_errors = {r: s for r, s in statuses.items() if s is not None and s >= 500}
        assert server_errors == {}

        port = int(gateway.url.rsplit(":", 1)[1])
        started = time.monotonic()
        answers, served = asyncio.run(_attack_while_serving(port, gateway.url, key))
        assert len(answers) == SLOW_ATTACKERS
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers)
        assert time.monotonic() - started < 60  # cut off by the header timeout, not left hanging
        assert served
        assert set(served) == {200}
        assert _rss_mib(gateway.process.pid) < RSS_BOUND_MIB

        assert gateway.process.poll() is None
        assert httpx.get(gateway.url + "/healthz").status_code == 200
        log = gateway.output()
        assert "Traceback" not in log
        assert "Invalid HTTP request" not in log  # refusals are counted, not logged one by one
        metrics = httpx.get(gateway.url + "/metrics").text
        assert (
            f'modelplex_gateway_connections_refused_total{{reason="too_slow"}} {SLOW_ATTACKERS + IDLE}'
            in metrics
        )
    finally:
        gateway.stop()
