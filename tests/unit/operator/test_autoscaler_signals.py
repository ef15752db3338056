"""Reading a model's load from engine and gateway /metrics pages."""

from __future__ import annotations

import pytest

from modelplex.gateway.metrics import GatewayMetrics
from modelplex.operator.autoscaler.signals import (
    GatewayReading,
    UnreadableMetrics,
    combine,
    engine_reading,
    gateway_reading,
    read_pages,
)
from mpxtest.metricsproxy import engine_page

VLLM_PAGE = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="smollm2"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="smollm2"} 5.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="smollm2"} 0.125
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="smollm2"} 1234.0
"""


def test_an_engine_page_gives_waiting_running_and_kv_cache() -> None:
    reading = engine_reading(VLLM_PAGE)
    assert (reading.waiting, reading.running, reading.kv_cache) == (5, 3, 0.125)


@pytest.mark.parametrize("page", ["", "<html>502 Bad Gateway</html>", "# TYPE x gauge\nx 1\n"])
def test_a_page_that_is_not_an_engines_is_unreadable_not_zero(page: str) -> None:
    with pytest.raises(UnreadableMetrics):
        engine_reading(page)


def test_the_gateways_own_metrics_give_its_queue_and_in_flight_for_one_model() -> None:
    metrics = GatewayMetrics()
    assert gateway_reading(metrics.render().decode(), "m") == GatewayReading(0, 0, 0)  # no traffic yet
    metrics.queue_depth.labels("m").set(4)
    metrics.queue_depth.labels("other").set(9)
    metrics.in_flight.labels("m", "10.0.0.1:8000").set(2)
    metrics.in_flight.labels("m", "10.0.0.2:8000").set(1)
    metrics.requests.labels("t1", "m", "200").inc(7)
    metrics.requests.labels("t2", "m", "429").inc(3)
    assert gateway_reading(metrics.render().decode(), "m") == GatewayReading(4, 3, 10)
    with pytest.raises(UnreadableMetrics):
        gateway_reading(engine_page(), "m")


def test_combined_signals_count_arrivals_from_the_growth_of_each_gateways_counter() -> None:
    engines = [engine_reading(engine_page(waiting=2, running=8, kv_cache=0.5)), engine_reading(engine_page())]
    gateways = {
        "a": GatewayReading(3, 10, 110),
        "b": GatewayReading(0, 0, 5),
        "new": GatewayReading(0, 0, 50),
    }
    signals = combine(engines, gateways, answered_before={"a": 100, "b": 20})
    assert (signals.waiting, signals.running, signals.kv_cache) == (2, 8, 0.25)
    assert (signals.gateway_queued, signals.gateway_in_flight) == (3, 10)
    assert signals.arrivals == 10 + 5  # b restarted (its counter fell); a new gateway brings none yet
    assert signals.demand == 3 + 10


def test_a_model_with_no_ready_engine_and_no_gateway_is_unreadable_not_idle() -> None:
    """Replicas still loading, and no gateway found: nothing says the load is zero."""
    nothing = read_pages({}, [], [], "smollm2", {})
    assert nothing.signals.unreadable == ("no ready engine and no gateway to read",)
    only_engine = read_pages({"e": VLLM_PAGE}, ["e"], [], "smollm2", {})
    assert (only_engine.signals.unreadable, only_engine.signals.demand) == ((), 8)
