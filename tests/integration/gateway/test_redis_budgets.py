"""Budgets shared through a real redis-server: two gateways, one budget; holds of a dead gateway expire."""

import asyncio
from typing import Any

import httpx
import pytest

from modelplex.gateway.budgets.amounts import Amount, Budget
from modelplex.gateway.budgets.keeper import BudgetExceeded
from modelplex.gateway.budgets.shared import RedisBudgets
from mpxtest.upstream import KEY, World

AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "a b c d"}], "max_tokens": 20}
MONTH = "2026-12"


async def _burst(urls: list[str], count: int, body: dict[str, Any]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        return await asyncio.gather(
            *(
                client.post(urls[i % len(urls)] + "/v1/chat/completions", json=body, headers=AUTH)
                for i in range(count)
            )
        )


def test_two_gateways_share_one_token_budget(world: World, redis_url: str) -> None:
    world.replica(token_delay=0.01)
    world.tenant(monthly_token_budget=2000)
    urls = [world.gateway(redis_url=redis_url), world.gateway(redis_url=redis_url)]
    responses = asyncio.run(_burst(urls, 100, CHAT))
    served = sum(r.status_code == 200 for r in responses)
    assert served
    assert {r.status_code for r in responses} == {200, 429}
    billed = sum(e.prompt_tokens + e.completion_tokens for e in world.wait_events(served))
    assert billed <= 2000
    # Sequentially, alternating gateways, until the month is used up: never past the budget.
    with httpx.Client(timeout=30) as client:
        for i in range(200):
            response = client.post(urls[i % 2] + "/v1/chat/completions", json=CHAT, headers=AUTH)
            if response.status_code != 200:
                break
            served += 1
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "false"
    billed = sum(e.prompt_tokens + e.completion_tokens for e in world.wait_events(served))
    assert 2000 - 200 < billed <= 2000  # one worst case here is about 130 tokens


def test_holds_of_a_gateway_that_stops_renewing_expire_and_renewed_ones_stay(redis_url: str) -> None:
    async def scenario() -> None:
        budget = Budget(100, None)
        dead, alive = RedisBudgets(redis_url, lease_seconds=0.5), RedisBudgets(redis_url, lease_seconds=0.5)
        await dead.reserve("crash", "a", MONTH, budget, Amount(0, 0), Amount(60, 0))
        held = await alive.reserve("crash", "b", MONTH, budget, Amount(0, 0), Amount(40, 0))
        with pytest.raises(BudgetExceeded) as caught:
            await alive.reserve("crash", "c", MONTH, budget, Amount(0, 0), Amount(1, 0))
        assert caught.value.refusal.reserved == Amount(100, 0)
        for _ in range(4):  # `dead` never renews; `alive` does, every third of a lease
            await asyncio.sleep(0.25)
            await alive.renew()
        third = await alive.reserve("crash", "c", MONTH, budget, Amount(0, 0), Amount(60, 0))
        with pytest.raises(BudgetExceeded):  # b is still held: 40 + 60
            await alive.reserve("crash", "d", MONTH, budget, Amount(0, 0), Amount(1, 0))
        await alive.settle(held, Amount(5, 0))
        await alive.settle(third, Amount(5, 0))
        # 10 used; a ledger reading of 30 (usage this store never saw) raises it, a lower one does not.
        raised = await alive.reserve("crash", "e", MONTH, budget, Amount(30, 0), Amount(70, 0))
        await alive.settle(raised, Amount(0, 0))
        with pytest.raises(BudgetExceeded) as caught:
            await alive.reserve("crash", "f", MONTH, budget, Amount(0, 0), Amount(71, 0))
        assert caught.value.refusal.remaining == Amount(70, 0)
        await dead.close()
        await alive.close()

    asyncio.run(scenario())
