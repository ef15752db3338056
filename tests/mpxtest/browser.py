"""A real browser for the console's tests: Debian's Chromium, headless, driven by Playwright, and the
console served by a real `modelplex ledger serve` process over a seeded SQLite ledger.

Screenshots go to the test's own directory; set MODELPLEX_CONSOLE_SCREENSHOTS to a folder (e.g.
docs/console) to keep them there too, which is how the README's pictures are made.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from modelplex.billing.ledger import opened
from modelplex.billing.settings import BillingSettings
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.processes import Component, free_port, start, stop, wait_until
from mpxtest.console import Seeded, seed_console_ledger
from mpxtest.ledger import ADMIN_TOKEN, PEPPER
from mpxtest.metricsproxy import MetricsPage, engine_page
from mpxtest.prometheus import PrometheusServer


@dataclass
class ConsoleServer:
    url: str
    seeded: Seeded
    process: Component


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is missing: `make system-deps` installs Debian's package"
    return found


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Per module, not per session: Playwright's sync API runs an event loop on this thread while it
    is open, which the asyncio tests after it could not start theirs beside."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


async def _seed(settings: BillingSettings) -> Seeded:
    async with opened(settings) as ledger:
        return await seed_console_ledger(ledger)


@pytest.fixture(scope="module")
def load_pages(prometheus: PrometheusServer) -> Iterator[None]:
    """llama-70b's engines and a gateway holding its requests, scraped by the session's Prometheus
    while the module runs (the model page draws them over time)."""
    gateway = GatewayMetrics()
    gateway.queue_depth.labels("llama-70b").set(5)
    pages = [
        MetricsPage(lambda: engine_page(waiting=2, running=6, kv_cache=0.5, model="llama-70b")),
        MetricsPage(lambda: gateway.render().decode()),
    ]
    prometheus.scrape("browser", [page.address for page in pages])
    prometheus.wait_scraped([page.address for page in pages])
    yield
    prometheus.scrape("browser", [])
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def console_server(
    tmp_path_factory: pytest.TempPathFactory, prometheus: PrometheusServer, load_pages: None
) -> Iterator[ConsoleServer]:
    """`modelplex ledger serve` on a free loopback port over a freshly seeded SQLite ledger, with the
    session's Prometheus for the model page's charts over time."""
    where = tmp_path_factory.mktemp("console")
    env = {
        "MODELPLEX_BILLING_PROMETHEUS_URL": prometheus.url,
        "MODELPLEX_DATABASE_URL": f"sqlite:///{where / 'ledger.db'}",
        "MODELPLEX_BILLING_STATE_DIR": str(where / "state"),
        "MODELPLEX_BILLING_KEY_PEPPER": PEPPER,
        "MODELPLEX_BILLING_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    settings = BillingSettings(
        database_url=env["MODELPLEX_DATABASE_URL"],
        state_dir=where / "state",
        key_pepper=PEPPER,
        admin_token=ADMIN_TOKEN,
    )
    # In a thread of its own: Playwright's sync API keeps an event loop running on this one.
    with ThreadPoolExecutor(1) as pool:
        seeded = pool.submit(asyncio.run, _seed(settings)).result()
    port = free_port()
    argv = [sys.executable, "-m", "modelplex", "ledger", "serve", "--port", str(port)]
    process = start("ledger-serve", argv, where, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            "the console to answer",
            lambda: httpx.get(f"{url}/admin/login", timeout=2).status_code == 200,
            timeout=30,
            watched=[process],
        )
        yield ConsoleServer(url=url, seeded=seeded, process=process)
    finally:
        stop([process])


def screenshot_dirs(tmp_path: Path) -> list[Path]:
    kept = os.environ.get("MODELPLEX_CONSOLE_SCREENSHOTS")
    dirs = [tmp_path] if not kept else [tmp_path, Path(kept)]
    for folder in dirs:
        folder.mkdir(parents=True, exist_ok=True)
    return dirs
