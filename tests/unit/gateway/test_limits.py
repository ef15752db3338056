import asyncio

import pytest

from modelplex.billing.contracts import PlanLimits
from modelplex.gateway.limits.base import LimitExceeded
from modelplex.gateway.limits.memory import MemoryLimiter


def test_rpm_admits_a_minute_then_refuses_with_retry_after() -> None:
    limiter = MemoryLimiter()
    limits = PlanLimits(requests_per_minute=3)

    async def scenario() -> float:
        for i in range(3):
            await limiter.admit("t", f"r{i}", limits, 1)
        with pytest.raises(LimitExceeded) as caught:
            await limiter.admit("t", "r3", limits, 1)
        assert caught.value.denial.limit == "requests per minute"
        await limiter.admit("other", "r4", limits, 1)  # tenants are separate
        return caught.value.denial.retry_after

    retry = asyncio.run(scenario())
    assert 15 < retry <= 20


def test_tpm_is_estimated_up_front_and_corrected_after() -> None:
    limiter = MemoryLimiter()
    limits = PlanLimits(tokens_per_minute=100)

    async def scenario() -> None:
        ticket = await limiter.admit("t", "a", limits, 10)
        await limiter.settle(ticket, 95)  # the engine counted 95: the bucket now holds ~5
        with pytest.raises(LimitExceeded) as caught:
            await limiter.admit("t", "b", limits, 10)
        assert caught.value.denial.limit == "tokens per minute"
        small = await limiter.admit("t", "c", limits, 4)
        await limiter.settle(small, 0)  # over-estimated: the 4 come back
        await limiter.admit("t", "d", limits, 4)

    asyncio.run(scenario())


def test_concurrency_slots_are_released_by_settle() -> None:
    limiter = MemoryLimiter()
    limits = PlanLimits(concurrent_requests=1)

    async def scenario() -> None:
        ticket = await limiter.admit("t", "a", limits, 1)
        with pytest.raises(LimitExceeded):
            await limiter.admit("t", "b", limits, 1)
        await limiter.settle(ticket, 1)
        await limiter.admit("t", "c", limits, 1)

    asyncio.run(scenario())


def test_a_refused_request_takes_nothing() -> None:
    limiter = MemoryLimiter()
    limits = PlanLimits(requests_per_minute=10, concurrent_requests=1)

    async def scenario() -> None:
        held = await limiter.admit("t", "a", limits, 1)
        for i in range(20):
            with pytest.raises(LimitExceeded):
                await limiter.admit("t", f"x{i}", limits, 1)
        await limiter.settle(held, 1)
        for i in range(9):
            ticket = await limiter.admit("t", f"y{i}", limits, 1)
            await limiter.settle(ticket, 1)

    asyncio.run(scenario())
