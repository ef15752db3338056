"""The model page's queue depth and KV cache use over time, from a real Prometheus scraping a real
gateway registry and engine pages; and the page's plain words when there is no Prometheus to ask."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplex.billing.api import build_admin_app
from modelplex.billing.ledger import Ledger
from modelplex.billing.settings import BillingSettings
from modelplex.gateway.metrics import GatewayMetrics
from mpxtest.console import OPERATOR_SECRET, seed_console_ledger, sign_in
from mpxtest.ledger import ADMIN_TOKEN, PEPPER
from mpxtest.metricsproxy import MetricsPage, engine_page
from mpxtest.prometheus import PrometheusServer

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)]
MODEL = "smollm2"  # not llama-70b: the browser test feeds the session's Prometheus that one
UNSEEN = "unpriced-model"  # in the ledger, never in Prometheus


def _settings(ledger_url: str, state: Path, prometheus_url: str | None) -> BillingSettings:
    return BillingSettings(
        database_url=ledger_url,
        state_dir=state,
        key_pepper=PEPPER,
        admin_token=ADMIN_TOKEN,
        auto_migrate=False,
        prometheus_url=prometheus_url,
    )


@pytest.fixture
def loaded_pages(prometheus: PrometheusServer) -> Iterator[list[MetricsPage]]:
    """Two engines of MODEL and a gateway holding requests for it, scraped by the Prometheus."""
    gateway = GatewayMetrics()
    gateway.queue_depth.labels(MODEL).set(6)
    gateway.queue_depth.labels("another-model").set(50)  # another model's queue is not this one's
    pages = [
        MetricsPage(lambda: engine_page(waiting=3, running=8, kv_cache=0.625, model=MODEL)),
        MetricsPage(lambda: engine_page(waiting=1, running=2, kv_cache=0.25, model=MODEL)),
        MetricsPage(lambda: gateway.render().decode()),
    ]
    addresses = [page.address for page in pages]
    prometheus.scrape("console", addresses)
    prometheus.wait_scraped(addresses)
    yield pages
    prometheus.scrape("console", [])
    for page in pages:
        page.close()


async def _model_page(ledger_url: str, tmp_path: Path, prometheus_url: str | None, model: str = MODEL) -> str:
    ledger = await Ledger.connect(_settings(ledger_url, tmp_path / "state", prometheus_url))
    try:
        await seed_console_ledger(ledger)
        transport = httpx.ASGITransport(app=build_admin_app(ledger))
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            assert (await sign_in(client, OPERATOR_SECRET)).status_code == 303
            page = await client.get(f"/admin/models/{model}")
            assert page.status_code == 200, page.text
            return page.text
    finally:
        await ledger.close()


def _charts(html: str) -> dict[str, dict[str, Any]]:
    found = re.findall(r'<script type="application/json" id="(load-chart-\d+)">(.*?)</script>', html, re.S)
    return {name: json.loads(body) for name, body in found}


def _last(chart: dict[str, Any], label: str) -> float:
    series = next(s for s in chart["series"] if s["label"] == label)
    assert len(series["values"]) == len(chart["x"])
    return float(series["values"][-1])


async def test_the_model_page_draws_queue_depth_and_kv_use_over_time_from_prometheus(
    ledger_url: str, tmp_path: Path, prometheus: PrometheusServer, loaded_pages: list[MetricsPage]
) -> None:
    html = await _model_page(ledger_url, tmp_path, prometheus.url)
    charts = _charts(html)
    assert set(charts) == {"load-chart-1", "load-chart-2"}
    queue, kv = charts["load-chart-1"], charts["load-chart-2"]
    assert queue["kind"] == kv["kind"] == "lines"
    assert _last(queue, "waiting in engines") == 4  # 3 + 1: both engines
    assert _last(queue, "held by gateways") == 6  # this model's queue only
    assert _last(kv, "KV cache use %") == 43.75  # the engines' mean
    # The period began before Prometheus did: those moments are gaps, never zeros.
    assert None in next(s for s in kv["series"])["values"]
    assert 0 not in next(s for s in kv["series"])["values"]


async def test_without_a_prometheus_url_the_page_says_so_instead_of_an_empty_chart(
    ledger_url: str, tmp_path: Path
) -> None:
    html = await _model_page(ledger_url, tmp_path, None)
    assert _charts(html) == {}
    history = html[html.index('id="load-history"') :][:600]
    assert "No Prometheus is configured" in history
    assert "MODELPLEX_BILLING_PROMETHEUS_URL" in history


async def test_an_unreachable_prometheus_is_named_on_the_page(ledger_url: str, tmp_path: Path) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{closed.server_address[1]}"
    closed.server_close()
    html = await _model_page(ledger_url, tmp_path, url)
    assert _charts(html) == {}
    history = html[html.index('id="load-history"') :][:800]
    assert "Prometheus could not be read" in history
    assert f"Prometheus at {url} is unreachable" in history


async def test_a_model_prometheus_holds_nothing_of_is_said_to_have_no_series(
    ledger_url: str, tmp_path: Path, prometheus: PrometheusServer
) -> None:
    html = await _model_page(ledger_url, tmp_path, prometheus.url, UNSEEN)
    assert _charts(html) == {}
    assert f"holds no queue or KV cache series of {UNSEEN}" in html
