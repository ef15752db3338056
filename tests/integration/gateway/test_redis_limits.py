"""Limits shared through a real redis-server: two gateways, one limit."""

import asyncio
import json
import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import LimitExceeded
from modelplex.gateway.limits.shared import RedisLimiter
from mpxtest.gatewayproc import start_gateway
from mpxtest.redis import RedisServer
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


def _statuses(url: str, count: int) -> list[int]:
    return [
        httpx.post(url + "/v1/chat/completions", json=CHAT, headers=AUTH, timeout=10).status_code
        for _ in range(count)
    ]


def test_unreachable_redis_falls_back_to_this_replicas_limits(world: World) -> None:
    world.replica()
    world.tenant(requests_per_minute=2)
    url = world.gateway(redis_url="redis://127.0.0.1:1/0")  # nothing listens: refused at once
    assert _statuses(url, 3) == [200, 200, 429]
    assert "modelplex_gateway_limits_degraded 1.0" in httpx.get(url + "/metrics").text


def test_redis_that_stops_answering_times_out_into_local_limits(world: World) -> None:
    world.replica()
    world.tenant(requests_per_minute=2)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        url = world.gateway(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_seconds=0.2)
        assert _statuses(url, 3) == [200, 200, 429]


def test_limits_are_shared_again_once_redis_is_back(world: World, tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    world.replica()
    world.tenant(requests_per_minute=3)
    redis.start()
    try:
        first = world.gateway(redis_url=redis.url, redis_retry_seconds=0.2)
        second = world.gateway(redis_url=redis.url, redis_retry_seconds=0.2)
        assert _statuses(first, 1) == [200]
        redis.stop()
        assert _statuses(first, 4) == [200, 200, 200, 429]  # its own bucket: limited, not unlimited
        redis.start()  # empty: Redis knows nothing of the outage
        time.sleep(0.3)  # the retry interval
        assert _statuses(first, 4) == [200, 200, 200, 429]  # Redis' fresh bucket (its own is empty)
        assert _statuses(second, 1) == [429]  # the same bucket
        assert "modelplex_gateway_limits_degraded 0.0" in httpx.get(first + "/metrics").text
    finally:
        redis.stop()


def test_a_long_request_keeps_its_concurrency_slot_past_the_lease(redis_url: str) -> None:
    async def scenario() -> None:
        holder, other = RedisLimiter(redis_url, lease_seconds=0.6), RedisLimiter(redis_url, 0.6)
        slots = PlanLimits(concurrent_requests=1)
        renewing = asyncio.ensure_future(holder.run())
        held = await holder.admit("t", "long", slots, 1)
        await asyncio.sleep(2.0)  # more than three leases
        with pytest.raises(LimitExceeded):
            await other.admit("t", "second", slots, 1)
        await holder.settle(held, 1)
        await other.settle(await other.admit("t", "third", slots, 1), 1)
        renewing.cancel()
        await holder.close()
        await other.close()

    asyncio.run(scenario())


def test_a_dead_gateways_slots_come_back_after_one_lease(redis_url: str) -> None:
    async def scenario() -> None:
        dead, alive = RedisLimiter(redis_url, lease_seconds=0.5), RedisLimiter(redis_url, 0.5)
        slots = PlanLimits(concurrent_requests=1)
        await dead.admit("t", "orphan", slots, 1)  # never renewed, never settled
        with pytest.raises(LimitExceeded):
            await alive.admit("t", "blocked", slots, 1)
        await asyncio.sleep(0.7)
        await alive.settle(await alive.admit("t", "after", slots, 1), 1)
        await dead.close()
        await alive.close()

    asyncio.run(scenario())


def test_a_stream_longer_than_the_lease_keeps_its_slot_through_the_gateway(
    world: World, redis_url: str
) -> None:
    world.replica(token_delay=0.1)  # 15 tokens: 1.5 s
    world.tenant(concurrent_requests=1)
    url = world.gateway(redis_url=redis_url, concurrency_lease_seconds=0.3)
    body = {**CHAT, "max_tokens": 15, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=AUTH) as stream:
        lines = stream.iter_lines()
        next(lines)
        time.sleep(1.0)
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 429
        assert sum(1 for line in lines if line.startswith("data: ")) > 5
    assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200


def test_two_gateway_processes_share_one_limit_through_redis(
    world: World, redis_url: str, tmp_path: Path
) -> None:
    replica = world.replica()
    config = tmp_path / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "models": [{"name": "m1", "endpoints": [{"url": replica.url}]}],
                "tenants": [
                    {"name": "acme", "keys": ["mpx-two-processes"], "limits": {"requests_per_minute": 3}}
                ],
            }
        )
    )
    env = {**os.environ, "MODELPLEX_REDIS_URL": redis_url}
    env.pop("MODELPLEX_DATABASE_URL", None)
    gateways = [
        start_gateway(config, tmp_path / f"journal-{i}", env, tmp_path / f"gateway-{i}.log") for i in range(2)
    ]
    try:
        headers = {"authorization": "Bearer mpx-two-processes"}
        codes = [
            httpx.post(g.url + "/v1/chat/completions", json=CHAT, headers=headers).status_code
            for g in gateways * 3
        ]
    finally:
        for gateway in gateways:
            gateway.stop()
    assert codes.count(200) == 3
    assert codes.count(429) == 3
