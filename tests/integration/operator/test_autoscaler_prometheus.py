"""The autoscaler's Prometheus source against a real Prometheus scraping real pages: the same
`Signals` as scraping the pages directly, and every target it cannot vouch for unreadable, never 0."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelplex.gateway.metrics import GatewayMetrics
from modelplex.operator.autoscaler.prometheus import PrometheusSource
from modelplex.operator.autoscaler.scrape import ScrapeSource
from modelplex.operator.autoscaler.signals import Reading, read_pages
from modelplex.operator.autoscaler.source import SignalSource
from mpxtest.metricsproxy import MetricsPage, engine_page
from mpxtest.prometheus import PrometheusServer
from mpxtest.wait import eventually

pytestmark = pytest.mark.anyio
MODEL = "m"


@pytest.fixture
def pages() -> Iterator[list[MetricsPage]]:
    """Two engines and one real gateway registry under load for MODEL (and another model)."""
    gateway = GatewayMetrics()
    gateway.queue_depth.labels(MODEL).set(4)
    gateway.queue_depth.labels("other").set(9)
    gateway.in_flight.labels(MODEL, "10.0.0.1:8000").set(2)
    gateway.in_flight.labels(MODEL, "10.0.0.2:8000").set(1)
    gateway.requests.labels("t1", MODEL, "200").inc(7)
    gateway.requests.labels("t2", MODEL, "429").inc(3)
    served = [
        MetricsPage(lambda: engine_page(waiting=3, running=8, kv_cache=0.625)),
        MetricsPage(lambda: engine_page(waiting=1, running=2, kv_cache=0.25)),
        MetricsPage(lambda: gateway.render().decode()),
    ]
    yield served
    for page in served:
        page.close()


async def _read(source: SignalSource, engines: list[str], gateways: list[str]) -> Reading:
    try:
        found = await source.pages(engines, gateways)
    finally:
        await source.close()
    return read_pages(found, engines, gateways, MODEL, {gateways[0]: 6.0} if gateways else {})


async def test_prometheus_gives_the_same_signals_as_scraping_the_same_pages(
    prometheus: PrometheusServer, pages: list[MetricsPage]
) -> None:
    prometheus.scrape("same-signals", [page.address for page in pages])
    prometheus.wait_scraped([page.address for page in pages])
    engines, gateways = [pages[0].url, pages[1].url], [pages[2].url]

    scraped = await _read(ScrapeSource(2.0), engines, gateways)
    queried = await _read(PrometheusSource(prometheus.url, 2.0, 30.0), engines, gateways)

    assert queried == scraped
    signals = queried.signals
    assert signals.unreadable == ()
    assert (signals.waiting, signals.running, signals.kv_cache) == (4, 10, 0.4375)
    assert (signals.gateway_queued, signals.gateway_in_flight, signals.arrivals) == (4, 3, 4)
    assert queried.answered == {pages[2].url: 10.0}
    prometheus.scrape("same-signals", [])


async def test_a_target_prometheus_does_not_scrape_or_cannot_scrape_is_unreadable(
    prometheus: PrometheusServer, pages: list[MetricsPage]
) -> None:
    scraped_ones = [pages[0].address, pages[2].address]
    prometheus.scrape("unreadable", scraped_ones)
    prometheus.wait_scraped(scraped_ones)
    source = PrometheusSource(prometheus.url, 2.0, 30.0)

    # pages[1] serves, but Prometheus has never scraped it: its load is unknown, not zero.
    missing = await _read(source, [pages[0].url, pages[1].url], [pages[2].url])
    assert len(missing.signals.unreadable) == 1
    assert pages[1].url in missing.signals.unreadable[0]
    assert "no scrape" in missing.signals.unreadable[0]

    # An engine whose page starts failing: Prometheus' next scrape says up 0.
    pages[0].status = 503

    def engine_down() -> bool:
        up = prometheus.query(f'up{{instance="{pages[0].address}"}}')
        return any(item["value"][1] == "0" for item in up)

    eventually(engine_down, timeout=20, what="Prometheus seeing the engine's page fail")
    failed = await _read(PrometheusSource(prometheus.url, 2.0, 30.0), [pages[0].url], [pages[2].url])
    assert [reason for reason in failed.signals.unreadable if pages[0].url in reason]
    assert "up 0" in failed.signals.unreadable[0]
    prometheus.scrape("unreadable", [])


async def test_a_page_prometheus_scrapes_that_is_not_an_engines_or_a_gateways_is_unreadable(
    prometheus: PrometheusServer, pages: list[MetricsPage]
) -> None:
    prometheus.scrape("wrong-kind", [pages[0].address, pages[2].address])
    prometheus.wait_scraped([pages[0].address, pages[2].address])
    # The gateway's page read as an engine's, and an engine's read as a gateway's.
    swapped = await _read(PrometheusSource(prometheus.url, 2.0, 30.0), [pages[2].url], [pages[0].url])
    assert len(swapped.signals.unreadable) == 2
    assert any("vllm:num_requests_waiting" in reason for reason in swapped.signals.unreadable)
    assert any("modelplex_gateway_queue_depth" in reason for reason in swapped.signals.unreadable)
    prometheus.scrape("wrong-kind", [])


async def test_an_unreachable_prometheus_makes_every_target_unreadable(pages: list[MetricsPage]) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{closed.server_address[1]}"
    closed.server_close()
    engines, gateways = [pages[0].url], [pages[2].url]
    reading = await _read(PrometheusSource(url, 2.0, 30.0), engines, gateways)
    assert len(reading.signals.unreadable) == 2
    assert all(url in reason and "unreachable" in reason for reason in reading.signals.unreadable)
