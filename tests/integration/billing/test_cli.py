"""The real `modelplex` CLI against a temp SQLite file and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modelplex.billing.authority import LedgerKeyAuthority
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import opened
from modelplex.billing.settings import BillingSettings
from modelplex.cli import main
from mpxtest.ledger import PEPPER, usage_event


@pytest.fixture
def env(ledger_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "MODELPLEX_DATABASE_URL": ledger_url,
        "MODELPLEX_BILLING_STATE_DIR": str(tmp_path / "state"),
        "MODELPLEX_BILLING_KEY_PEPPER": PEPPER,
    }


def cli(env: dict[str, str], *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result


def test_tenants_keys_prices_usage_and_invoice(env: dict[str, str]) -> None:
    cli(env, "plans", "set", "pro", "--rpm", "60", "--monthly-spend", "10", "--allow-model", "m1")
    cli(env, "tenants", "create", "acme", "--plan", "pro")
    tenants = json.loads(cli(env, "tenants", "list", "--json").output)
    assert [(t["name"], t["status"], t["plan"]) for t in tenants] == [("acme", "active", "pro")]
    cli(
        env,
        "prices",
        "set",
        "--model",
        "m1",
        "--input",
        "2",
        "--output",
        "4",
        "--cached-input",
        "1",
        "--effective-from",
        "2026-03-01",
    )
    key = cli(env, "keys", "create", "--tenant", "acme").output.splitlines()[-1]
    assert key.startswith("mpx-")

    async def use_key() -> None:
        async with opened(_settings(env)) as ledger:
            principal = await LedgerKeyAuthority(ledger).authenticate(key)
            assert principal is not None
            assert principal.tenant_name == "acme"
            event = usage_event(
                "r1", tenant_id=principal.tenant_id, prompt=500_000, cached=100_000, completion=0
            )
            await LedgerSink(ledger).ingest([event])

    asyncio.run(use_key())
    usage = json.loads(
        cli(
            env, "usage", "--tenant", "acme", "--json", "--since", "2026-03-01", "--until", "2026-04-01"
        ).output
    )
    assert [(u["model"], u["promptTokens"]) for u in usage] == [("m1", 500_000)]
    invoice = json.loads(cli(env, "invoice", "--tenant", "acme", "--period", "2026-03").output)
    assert invoice["totals"] == {"USD": "0.90"}  # 400,000 * 2 + 100,000 * 1, per 1M
    csv_lines = cli(env, "invoice", "--tenant", "acme", "--period", "2026-03", "--format", "csv").output
    assert csv_lines.splitlines()[-1].endswith(",USD,,,,,,,,0.90")


def _settings(env: dict[str, str]) -> BillingSettings:
    return BillingSettings(
        database_url=env["MODELPLEX_DATABASE_URL"],
        state_dir=Path(env["MODELPLEX_BILLING_STATE_DIR"]),
        key_pepper=PEPPER,
    )


def test_suspend_and_revoke(env: dict[str, str]) -> None:
    cli(env, "tenants", "create", "acme")
    key = cli(env, "keys", "create", "--tenant", "acme").output.splitlines()[-1]
    cli(env, "tenants", "suspend", "acme")
    key_id = json.loads(cli(env, "keys", "list", "--tenant", "acme", "--json").output)[0]["id"]
    assert "Revoked" in cli(env, "keys", "revoke", key_id).output

    async def check() -> None:
        async with opened(_settings(env)) as ledger:
            assert await LedgerKeyAuthority(ledger).authenticate(key) is None

    asyncio.run(check())
    assert json.loads(cli(env, "tenants", "list", "--json").output)[0]["status"] == "suspended"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["prices", "set", "--model", "m1", "--input", "-1", "--output", "1"], "--input"),
        (["prices", "set", "--model", "m1", "--input", "1", "--output", "x"], "--output"),
        (
            ["prices", "set", "--model", "m1", "--input", "1", "--output", "1", "--currency", "EURO"],
            "--currency",
        ),
        (["invoice", "--tenant", "acme", "--period", "2026-3"], "--period"),
        (["invoice", "--tenant", "nobody", "--period", "2026-03"], "--tenant"),
        (["keys", "create", "--tenant", "nobody"], "--tenant"),
        (["keys", "revoke", "key_missing"], "KEY"),
        (["usage", "--model", "nothing"], "--model"),
        (["tenants", "create", "Bad Name!"], "NAME"),
        (["tenants", "create", "acme"], "NAME"),  # already exists
    ],
)
def test_bad_input_fails_naming_the_option(env: dict[str, str], args: list[str], needle: str) -> None:
    cli(env, "tenants", "create", "acme")
    result = cli(env, *args, ok=False)
    assert result.exit_code == 1
    assert f"Error: {needle}:" in result.output


def test_installed_command_prints_the_key_alone_on_the_last_line(env: dict[str, str]) -> None:
    command = [str(Path(sys.executable).parent / "modelplex")]
    full_env = {**os.environ, **env}
    subprocess.run([*command, "tenants", "create", "acme"], env=full_env, check=True, capture_output=True)
    done = subprocess.run(
        [*command, "keys", "create", "--tenant", "acme"],
        env=full_env,
        check=True,
        capture_output=True,
        text=True,
    )
    last = done.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("mpx-")
    assert " " not in last
    assert last not in done.stderr
