"""The console in a real browser (headless Chromium): sign in, every page, the filters, a download,
sign out; no console errors, every chart drawn, a screenshot of each page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from mpxtest.browser import ConsoleServer, screenshot_dirs
from mpxtest.console import OPERATOR_SECRET
from mpxtest.ledger import ADMIN_TOKEN

pytestmark = pytest.mark.slow


@pytest.fixture
def problems() -> list[str]:
    """What the browser logged as errors or warnings, and the pages' uncaught exceptions."""
    return []


@pytest.fixture
def page(chromium: Browser, console_server: ConsoleServer, problems: list[str]) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, base_url=console_server.url)
    tab = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        yield tab
        assert problems == [], problems
    finally:
        context.close()


def _sign_in(page: Page, secret: str) -> None:
    page.goto("/admin/")
    assert page.url.endswith("/admin/login")
    page.fill("#secret", secret)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def _charts_drawn(page: Page) -> int:
    figures = page.locator("figure.chart")
    page.wait_for_function("[...document.querySelectorAll('figure.chart')].every(f => f.dataset.drawn)")
    for index in range(figures.count()):
        assert figures.nth(index).locator("canvas").count() == 1
    return figures.count()


def _shoot(page: Page, name: str, tmp_path: Path) -> None:
    for folder in screenshot_dirs(tmp_path):
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_the_operator_goes_through_every_page(
    page: Page, console_server: ConsoleServer, tmp_path: Path
) -> None:
    seeded = console_server.seeded
    _sign_in(page, OPERATOR_SECRET)
    assert page.url.endswith("/admin/overview")
    assert page.locator("section.cards h2").all_inner_texts() == ["Today", "This month"]
    assert _charts_drawn(page) == 1
    assert ADMIN_TOKEN not in page.content()
    _shoot(page, "overview-today", tmp_path)

    # Last month (usage on every day of it): the filter travels with every link from here on.
    page.click("a.step[title='previous month']")
    assert page.url.endswith(f"/admin/overview?period={seeded.previous.label}")
    assert page.locator("section.cards h2").all_inner_texts() == [seeded.previous.label]
    assert _charts_drawn(page) == 1
    _shoot(page, "overview", tmp_path)

    page.click("nav >> text=Tenants")
    assert f"period={seeded.previous.label}" in page.url
    assert page.locator("#tenants tbody tr").count() == 3
    _shoot(page, "tenants", tmp_path)
    page.click("#tenants >> text=acme")
    assert page.url.split("?")[0].endswith("/admin/tenants/acme")
    assert _charts_drawn(page) == 1
    assert page.locator("table.slo").count() == 1
    _shoot(page, "tenant", tmp_path)

    with page.expect_download() as download:
        page.click(f"h2 a[href='/admin/invoices/acme/{seeded.previous.label}.csv']")
    saved = tmp_path / "invoice.csv"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"invoice-acme-{seeded.previous.label}.csv"
    assert saved.read_text().startswith("tenant,period,model")

    page.click("nav >> text=Models")
    assert page.locator("#models tbody tr").count() == 3
    _shoot(page, "models", tmp_path)
    page.click("#models >> text=llama-70b")
    assert _charts_drawn(page) == 2  # last month: Prometheus holds nothing of it, and says so
    assert "holds no queue or KV cache series" in page.locator("#load-history").inner_text()
    page.goto("/admin/models/llama-70b")  # this month: queue and KV use over time, from Prometheus
    assert _charts_drawn(page) == 4
    assert page.locator("#load-history figure.chart canvas").count() == 2
    _shoot(page, "model", tmp_path)
    page.go_back()  # to last month, which the filters below carry on

    page.click("nav >> text=Invoices")
    _shoot(page, "invoices", tmp_path)
    page.fill("input[name=tenant]", "globex")
    page.click("form.filters button")
    assert "tenant=globex" in page.url
    assert f"period={seeded.previous.label}" in page.url
    assert "globex" in page.locator("h1").inner_text()
    page.click("a.step[title='previous month']")
    assert "No usage in this period." in page.content()

    page.click("text=Sign out")
    assert page.url.endswith("/admin/login")
    page.goto("/admin/overview")
    assert "/admin/login" in page.url


def test_a_tenant_signs_in_with_its_key(page: Page, console_server: ConsoleServer, tmp_path: Path) -> None:
    _sign_in(page, console_server.seeded.keys["acme"])
    assert page.url.endswith("/admin/account")
    assert _charts_drawn(page) == 1
    content = page.content()
    assert "globex" not in content
    assert console_server.seeded.keys["acme"] not in content
    _shoot(page, "account", tmp_path)
    # With the page's cookies, but outside the page (a refused document would be logged as an error).
    refused = page.request.get("/admin/tenants", max_redirects=0)
    assert refused.status == 403
    assert "Not yours" in refused.text()
    assert "globex" not in refused.text()


def test_a_wrong_secret_is_said_so(page: Page, problems: list[str], tmp_path: Path) -> None:
    _sign_in(page, "not the token")
    # The refused sign-in is a 401 page, which the browser logs; that one line is expected.
    assert problems == [
        "error: Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    problems.clear()
    assert page.url.endswith("/admin/login")
    assert "neither the admin token nor a valid API key" in page.locator(".problem").inner_text()
    _shoot(page, "sign-in", tmp_path)
