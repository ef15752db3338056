"""The autoscaler's Prometheus source, pure parts: targets found by `instance`, and every target
Prometheus cannot vouch for unreadable (the same series read against a real Prometheus are in
tests/integration/operator/test_autoscaler_prometheus.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelplex.operator.autoscaler.prometheus import exposed_targets, instance_of, targets_query
from modelplex.operator.autoscaler.settings import AutoscalerSettings
from modelplex.operator.autoscaler.signals import Exposed, UnreadableMetrics, engine_reading, gateway_reading
from modelplex.prometheus_api import Sample

ENGINE = "http://10.0.0.1:8000/metrics"
GATEWAY = "http://[fd00::2]:8080/metrics"


def _sample(name: str, instance: str, value: float, **labels: str) -> Sample:
    return Sample({"__name__": name, "instance": instance, **labels}, value)


def test_a_targets_instance_is_the_host_and_port_prometheus_scraped() -> None:
    assert instance_of(ENGINE) == "10.0.0.1:8000"
    assert instance_of(GATEWAY) == "[fd00::2]:8080"
    assert instance_of("https://gw.example/metrics") == "gw.example:443"
    assert targets_query(["x"], [ENGINE]) == '{__name__=~"up|x", instance=~"10\\\\.0\\\\.0\\\\.1:8000"}'


def test_series_of_a_target_that_is_up_are_read_as_its_page() -> None:
    samples = [
        _sample("up", "10.0.0.1:8000", 1),
        _sample("vllm:num_requests_waiting", "10.0.0.1:8000", 3, model_name="m"),
        _sample("vllm:num_requests_running", "10.0.0.1:8000", 5, model_name="m"),
        _sample("up", "[fd00::2]:8080", 1),
        _sample("modelplex_gateway_limits_degraded", "[fd00::2]:8080", 0),
    ]
    found = exposed_targets(samples, [ENGINE, GATEWAY], 60)
    engine, gateway = found[ENGINE], found[GATEWAY]
    assert isinstance(engine, Exposed)
    assert isinstance(gateway, Exposed)
    assert (
        engine_reading(engine).waiting,
        engine_reading(engine).running,
        engine_reading(engine).kv_cache,
    ) == (
        3,
        5,
        None,
    )
    # A gateway that has seen no request for the model has none of its series: nothing held.
    assert gateway_reading(gateway, "m").queued == 0


def test_a_target_without_a_recent_scrape_or_whose_scrape_failed_is_unreadable() -> None:
    samples = [_sample("up", "10.0.0.1:8000", 0)]
    found = exposed_targets(samples, [ENGINE, GATEWAY], 60)
    assert isinstance(found[ENGINE], UnreadableMetrics)
    assert "up 0" in str(found[ENGINE])
    assert isinstance(found[GATEWAY], UnreadableMetrics)
    assert "no scrape" in str(found[GATEWAY])


def test_an_up_target_that_is_not_a_gateway_is_no_gateway() -> None:
    found = exposed_targets([_sample("up", "[fd00::2]:8080", 1)], [GATEWAY], 60)
    with pytest.raises(UnreadableMetrics):
        gateway_reading(found[GATEWAY], "m")  # type: ignore[arg-type]


def test_the_prometheus_url_must_be_one() -> None:
    assert AutoscalerSettings(prometheus_url="http://prometheus.monitoring:9090").prometheus_url
    with pytest.raises(ValidationError, match="prometheus_url"):
        AutoscalerSettings(prometheus_url="prometheus:9090")
