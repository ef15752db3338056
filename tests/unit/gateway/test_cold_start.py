"""A model at zero replicas holds its requests for a cold start, in order, and says how long to wait."""

from __future__ import annotations

import asyncio

import pytest

from modelplex.gateway.discovery.base import Catalog, EndpointSpec, ModelSpec
from modelplex.gateway.errors import GatewayError
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.pool import ColdStarts, Pool
from modelplex.gateway.routing.base import RouteRequest
from modelplex.gateway.settings import GatewaySettings

ASLEEP = Catalog(models=(ModelSpec(name="m"),))
AWAKE = Catalog(models=(ModelSpec(name="m", endpoints=(EndpointSpec(url="http://10.0.0.1:8000"),)),))
REQUEST = RouteRequest(model="m", prefix="", session_id=None)


def _pool(**settings: float) -> tuple[Pool, GatewayMetrics]:
    metrics = GatewayMetrics()
    return Pool(GatewaySettings(**settings), metrics), metrics  # type: ignore[arg-type]


def test_held_requests_outlive_the_queue_timeout_and_are_served_in_order_when_a_replica_appears() -> None:
    async def scenario() -> list[int]:
        pool, metrics = _pool(queue_timeout_seconds=0.1, cold_start_timeout_seconds=5)
        await pool.update(ASLEEP)
        served: list[int] = []

        async def one(index: int) -> None:
            lease = await pool.acquire("m", REQUEST)
            served.append(index)
            pool.release(lease, False)

        waiting = [asyncio.create_task(one(i)) for i in range(3)]
        await asyncio.sleep(0.3)  # three times the ordinary queue timeout
        depth = metrics.registry.get_sample_value("modelplex_gateway_queue_depth", {"model": "m"})
        assert depth == 3  # what the autoscaler reads
        await pool.update(AWAKE)
        await asyncio.gather(*waiting)
        return served

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_past_the_cold_start_deadline_retry_after_estimates_the_time_to_ready() -> None:
    async def scenario() -> GatewayError:
        pool, _ = _pool(cold_start_timeout_seconds=0.2, cold_start_estimate_seconds=90)
        await pool.update(ASLEEP)
        with pytest.raises(GatewayError) as refused:
            await pool.acquire("m", REQUEST)
        return refused.value

    error = asyncio.run(scenario())
    assert error.status == 503
    assert 89 <= int(error.headers["retry-after"]) <= 90


def test_cold_starts_are_measured_from_the_first_held_request_to_the_first_replica() -> None:
    now = [100.0]
    starts = ColdStarts(120.0, clock=lambda: now[0])
    assert starts.remaining("m") == 120.0  # nothing measured yet
    starts.waiting("m")
    now[0] = 130.0
    starts.waiting("m")  # a second request does not restart the clock
    starts.observe("m", has_replicas=False)
    now[0] = 160.0
    starts.observe("m", has_replicas=True)
    assert starts.remaining("m") == 60.0
    starts.waiting("m")
    now[0] = 200.0
    assert starts.remaining("m") == 20.0
