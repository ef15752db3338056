"""Budgets that hold: concurrent and back-to-back requests never spend past a tenant's budget."""

import asyncio
from decimal import Decimal
from typing import Any

import httpx

from modelplex.billing.contracts import TokenPrice
from mpxtest.upstream import KEY, World

AUTH = {"authorization": f"Bearer {KEY}"}
MAX_TOKENS = 20
MESSAGES = [{"role": "user", "content": "one two three four"}]
CHAT = {"model": "m1", "messages": MESSAGES, "max_tokens": MAX_TOKENS}
PRICE = TokenPrice(
    currency="USD", input_per_1m=Decimal(100), cached_input_per_1m=Decimal(100), output_per_1m=Decimal(400)
)


async def _burst(url: str, count: int, body: dict[str, Any]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        return await asyncio.gather(
            *(client.post(url + "/v1/chat/completions", json=body, headers=AUTH) for _ in range(count))
        )


def _billed_tokens(world: World, count: int) -> int:
    return sum(e.prompt_tokens + e.completion_tokens for e in world.wait_events(count))


def test_a_burst_of_100_concurrent_requests_stays_within_a_2000_token_budget(world: World) -> None:
    world.replica(token_delay=0.01)  # every admitted request is still running when the others arrive
    world.tenant(monthly_token_budget=2000)
    url = world.gateway()
    responses = asyncio.run(_burst(url, 100, CHAT))
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert served
    assert refused
    assert {r.status_code for r in refused} == {429}
    assert {r.json()["error"]["code"] for r in refused} == {"insufficient_quota"}
    # Refused while others held the budget: worth retrying, unlike an exhausted month.
    assert all("x-should-retry" not in r.headers for r in refused)
    assert "requests in flight" in refused[0].json()["error"]["message"]
    assert _billed_tokens(world, len(served)) <= 2000


def test_back_to_back_requests_use_the_budget_up_and_never_past_it(world: World) -> None:
    world.replica()
    world.tenant(monthly_token_budget=2000)
    url = world.gateway()
    statuses: list[int] = []
    with httpx.Client(timeout=30) as client:
        while not statuses or statuses[-1] == 200:
            response = client.post(url + "/v1/chat/completions", json=CHAT, headers=AUTH)
            statuses.append(response.status_code)
    assert statuses[-1] == 429
    last = response.json()["error"]
    assert last["code"] == "insufficient_quota"
    assert response.headers["x-should-retry"] == "false"  # nothing in flight: only next month helps
    billed = _billed_tokens(world, len(statuses) - 1)
    per_request = billed // (len(statuses) - 1)
    assert billed <= 2000
    # Refused only when one more worst case (prompt bound + max_tokens) no longer fits: the budget
    # left unused is less than one reservation.
    reserved = int(last["message"].split("up to ")[1].split()[0])
    assert 2000 - billed < reserved
    assert per_request == 4 + MAX_TOKENS


def test_a_spend_budget_holds_at_the_models_current_price(world: World) -> None:
    world.replica(token_delay=0.01)
    world.tenant(monthly_spend_budget=Decimal("0.05"))
    world.authority.set_price("m1", PRICE)
    url = world.gateway()
    responses = asyncio.run(_burst(url, 60, CHAT))
    served = sum(r.status_code == 200 for r in responses)
    events = world.wait_events(served)
    spent = sum(
        (e.prompt_tokens * PRICE.input_per_1m + e.completion_tokens * PRICE.output_per_1m) / Decimal(10**6)
        for e in events
    )
    assert served
    assert spent <= Decimal("0.05")
    refused = next(r for r in responses if r.status_code == 429).json()["error"]
    assert "spend budget" in refused["message"]
    assert "USD" in refused["message"]


def test_reservations_are_given_back_when_requests_end(world: World) -> None:
    world.replica()
    world.tenant(monthly_token_budget=2000)
    world.authority.set_used("alpha", 1700)  # 300 left: room for one small worst case
    url = world.gateway()
    with httpx.Client(timeout=30) as client:
        too_big = client.post(url + "/v1/chat/completions", json={**CHAT, "max_tokens": 500}, headers=AUTH)
        assert too_big.status_code == 429
        assert "up to" in too_big.json()["error"]["message"]
        small = {**CHAT, "max_tokens": 1}
        assert client.post(url + "/v1/chat/completions", json=small, headers=AUTH).status_code == 200
        assert client.post(url + "/v1/chat/completions", json=small, headers=AUTH).status_code == 200
