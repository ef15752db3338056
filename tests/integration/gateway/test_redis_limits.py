"""Limits shared through a real redis-server: two gateways, one limit."""

import asyncio

import httpx
import pytest

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import LimitExceeded
from modelplex.gateway.limits.shared import RedisLimiter
from mpxtest.upstream import KEY, World

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 1}
AUTH = {"authorization": f"Bearer {KEY}"}


def test_two_gateways_enforce_one_rpm_limit(world: World, redis_url: str) -> None:
    world.replica()
    world.tenant(requests_per_minute=4)
    first = world.gateway(redis_url=redis_url)
    second = world.gateway(redis_url=redis_url)
    codes = [
        httpx.post(url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code
        for url in [first, second] * 4
    ]
    assert codes.count(200) == 4
    assert codes.count(429) == 4


def test_shared_concurrency_and_token_correction(redis_url: str) -> None:
    async def scenario() -> None:
        one, two = RedisLimiter(redis_url), RedisLimiter(redis_url)
        slots = PlanLimits(concurrent_requests=1)
        held = await one.admit("t", "a", slots, 1)
        with pytest.raises(LimitExceeded) as caught:
            await two.admit("t", "b", slots, 1)
        assert caught.value.denial.limit == "concurrent requests"
        await one.settle(held, 1)
        await two.settle(await two.admit("t", "c", slots, 1), 1)

        tokens = PlanLimits(tokens_per_minute=100)
        ticket = await one.admit("u", "d", tokens, 10)
        await one.settle(ticket, 98)
        with pytest.raises(LimitExceeded) as caught:
            await two.admit("u", "e", tokens, 10)
        assert caught.value.denial.limit == "tokens per minute"
        assert 0 < caught.value.denial.retry_after < 10
        await one.close()
        await two.close()

    asyncio.run(scenario())


def test_a_redis_outage_fails_open(world: World) -> None:
    world.replica()
    world.tenant(requests_per_minute=1)
    url = world.gateway(redis_url="redis://127.0.0.1:1/0")
    for _ in range(2):
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200
