"""Budgets on the real ledger (SQLite and PostgreSQL): prices from the price history, the plan's spend
budget, `modelplex gateway run`; a burst of concurrent requests never spends past the budget."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import httpx

from mpxtest.gatewayproc import cli, create_key, start_gateway, wait_usage_rows, write_config
from mpxtest.upstream import World

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 20}
INPUT, OUTPUT = Decimal(100), Decimal(400)  # per 1M tokens
BUDGET = Decimal("0.05")


async def _burst(url: str, key: str, count: int) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        return await asyncio.gather(
            *(client.post(url + "/v1/chat/completions", json=CHAT, headers=headers) for _ in range(count))
        )


def test_a_spend_budget_priced_from_the_ledger_holds_under_a_burst(
    world: World, ledger_env: dict[str, str], tmp_path: Path
) -> None:
    replica = world.replica(token_delay=0.01)
    cli(ledger_env, "prices", "set", "--model", "m1", "--input", str(INPUT), "--output", str(OUTPUT))
    cli(ledger_env, "plans", "set", "metered", "--monthly-spend", str(BUDGET))
    cli(ledger_env, "tenants", "create", "acme", "--plan", "metered")
    key = create_key(ledger_env, "acme")
    config = write_config(tmp_path / "gateway.json", "m1", [replica.url])
    gateway = start_gateway(config, tmp_path / "journal", ledger_env, tmp_path / "gateway.log")
    try:
        responses = asyncio.run(_burst(gateway.url, key, 80))
    finally:
        gateway.stop()
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert served
    assert refused
    assert {r.json()["error"]["code"] for r in refused} == {"insufficient_quota"}
    assert "spend budget" in refused[0].json()["error"]["message"]
    rows = wait_usage_rows(ledger_env, len(served))
    spent = sum(
        (row["prompt"] * INPUT + row["completion"] * OUTPUT) / Decimal(10**6) for row in rows.values()
    )
    assert len(rows) == len(served)
    assert spent <= BUDGET
