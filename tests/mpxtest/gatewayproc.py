"""`modelplex gateway run` as a child process on the real ledger, and the ledger's view of its usage.

The fixture `ledger_env` is the environment of such a ledger, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from modelplex.billing.ledger import opened
from modelplex.billing.settings import BillingSettings
from modelplex.billing.tables import UsageEventRow
from modelplex.cli import main
from mpxtest import canary
from mpxtest.ledger import ADMIN_TOKEN, PEPPER
from mpxtest.postgres import EmbeddedPostgres
from mpxtest.upstream import free_socket
from mpxtest.wait import eventually

CLI = str(Path(sys.executable).parent / "modelplex")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of a ledger on a fresh SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        canary.watch(tmp_path / "ledger.db", "a SQLite ledger")
    else:
        server: EmbeddedPostgres = request.getfixturevalue("postgres")
        url = server.create_database(f"gateway_{uuid.uuid4().hex[:12]}")
    return {
        "MODELPLEX_DATABASE_URL": url,
        "MODELPLEX_BILLING_STATE_DIR": str(tmp_path / "state"),
        "MODELPLEX_BILLING_KEY_PEPPER": PEPPER,
        "MODELPLEX_BILLING_ADMIN_TOKEN": ADMIN_TOKEN,
        "MODELPLEX_BILLING_AUTH_CACHE_SECONDS": "1",
    }


def cli(env: dict[str, str], *args: str) -> str:
    """Run `modelplex ARGS` (in-process, through the real command tree); its output."""
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def create_key(env: dict[str, str], tenant: str) -> str:
    return cli(env, "keys", "create", "--tenant", tenant).splitlines()[-1]


def write_config(path: Path, model: str, urls: list[str]) -> Path:
    endpoints = [{"url": url} for url in urls]
    path.write_text(
        json.dumps({"models": [{"name": model, "routing": "round-robin", "endpoints": endpoints}]})
    )
    return path


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> str:
        """SIGTERM and wait: the server drains, the lifespan ships and closes. The log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
        return self.output()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def free_port() -> int:
    sock = free_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def start_gateway(
    config: Path,
    journal: Path,
    env: dict[str, str],
    log: Path,
    args: tuple[str, ...] = (),
    wrapper: tuple[str, ...] = (),
) -> GatewayProcess:
    """`modelplex gateway run --port <free> --config CONFIG ARGS` (run by WRAPPER, a command prefix that
    ends by exec'ing it, when given), once its /healthz answers. It logs at DEBUG unless ARGS say
    otherwise; its log and journal are scanned for secrets at the end of the session."""
    port = free_port()
    if "--log-level" not in args:
        args = ("--log-level", "DEBUG", *args)
    canary.watch(log, "a gateway's log")
    canary.watch(journal, "a gateway's journal")
    settings = {
        "MODELPLEX_GATEWAY_JOURNAL_DIR": str(journal),
        "MODELPLEX_GATEWAY_SHIP_INTERVAL_SECONDS": "0.05",
        "MODELPLEX_GATEWAY_SCRAPE_INTERVAL_SECONDS": "0",
        "PATH": "/usr/bin:/bin",
    }
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [*wrapper, CLI, "gateway", "run", "--port", str(port), "--config", str(config), *args],
            env={**env, **settings},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, gateway.output()
        try:
            if httpx.get(gateway.url + "/healthz").status_code == 200:
                return gateway
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the gateway did not start:\n" + gateway.output()
        time.sleep(0.05)


def usage_rows(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every usage row in the ledger, by request_id."""
    settings = BillingSettings(
        database_url=env["MODELPLEX_DATABASE_URL"],
        state_dir=Path(env["MODELPLEX_BILLING_STATE_DIR"]),
        key_pepper=PEPPER,
        auto_migrate=False,
    )

    async def read() -> dict[str, dict[str, Any]]:
        async with opened(settings) as ledger, ledger.sessions() as session:
            rows = (await session.execute(select(UsageEventRow))).scalars().all()
        return {
            row.request_id: {
                "prompt": row.prompt_tokens,
                "completion": row.completion_tokens,
                "outcome": row.outcome,
                "tenant": row.tenant_id,
            }
            for row in rows
        }

    return asyncio.run(read())


def wait_usage_rows(env: dict[str, str], at_least: int, timeout: float = 10) -> dict[str, dict[str, Any]]:
    """The ledger's usage rows (as `usage_rows`) once there are at least `at_least` of them."""

    def enough() -> dict[str, dict[str, Any]] | None:
        rows = usage_rows(env)
        return rows if len(rows) >= at_least else None

    return eventually(enough, timeout, 0.1, what=f"{at_least} usage rows")
