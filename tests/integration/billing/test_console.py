"""The console over a seeded ledger, on SQLite and PostgreSQL, driven over HTTP in process: sign-in
and out, every page, the numbers agreeing to the token and the cent with the exports, the invoice
and the raw usage rows, and the isolation between tenants and the operator."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from modelplex.billing.api import build_admin_app
from modelplex.billing.keystore import revoke_key
from modelplex.billing.ledger import Ledger
from modelplex.billing.statements import build_invoice
from mpxtest.console import (
    DECIDED_DAYS,
    OPERATOR_SECRET,
    TENANTS,
    Seeded,
    raw_totals,
    seed_console_ledger,
    sign_in,
)
from mpxtest.ledger import ADMIN_TOKEN

pytestmark = pytest.mark.anyio
OPERATOR_PAGES = ("/admin/overview", "/admin/tenants", "/admin/models", "/admin/invoices")


@pytest.fixture
async def seeded(ledger: Ledger) -> Seeded:
    return await seed_console_ledger(ledger)


@pytest.fixture
async def browser(ledger: Ledger) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client of the admin app, as a browser on the console's origin."""
    transport = httpx.ASGITransport(app=build_admin_app(ledger))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        yield client


async def _as_operator(client: httpx.AsyncClient) -> None:
    signed = await sign_in(client, OPERATOR_SECRET)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/admin/overview"


async def test_no_page_works_without_a_session(browser: httpx.AsyncClient, seeded: Seeded) -> None:
    period = seeded.period.label
    paths = [
        *OPERATOR_PAGES,
        "/admin/tenants/acme",
        "/admin/models/llama-70b",
        f"/admin/invoices/acme/{period}.csv",
        "/admin/account",
        f"/admin/account/invoices/{period}.json",
    ]
    for path in paths:
        response = await browser.get(path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/login?next="), path
        assert "acme" not in response.text
        assert "llama" not in response.text
    assert (await browser.get("/admin/")).headers["location"] == "/admin/login"


async def test_sign_in_with_the_admin_token_then_every_page_then_sign_out(
    browser: httpx.AsyncClient, seeded: Seeded
) -> None:
    await _as_operator(browser)
    cookie = browser.cookies["mpx_session"]
    for path in (*OPERATOR_PAGES, "/admin/tenants/acme", "/admin/models/llama-70b", "/admin/tenants/initech"):
        response = await browser.get(path)
        assert response.status_code == 200, (path, response.text)
        assert "text/html" in response.headers["content-type"]
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert ADMIN_TOKEN not in response.text
        assert seeded.keys["acme"] not in response.text
    page = (await browser.get("/admin/tenants/acme")).text
    assert seeded.keys["acme"][:12] in page  # keys by prefix only
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    signed_out = await browser.post("/admin/logout", data={"csrf": csrf})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/admin/login"
    # The session is gone on the server too: the old cookie opens nothing.
    browser.cookies.set("mpx_session", cookie, domain="console.test", path="/admin/")
    assert (await browser.get("/admin/overview")).status_code == 303


async def test_a_wrong_secret_and_a_forged_form_are_refused(
    browser: httpx.AsyncClient, seeded: Seeded
) -> None:
    wrong = await sign_in(browser, "mpx-not-a-real-key-at-all-000000000")
    assert wrong.status_code == 401
    assert "neither the admin token nor a valid API key" in wrong.text
    assert "mpx_session" not in browser.cookies
    await browser.get("/admin/login")
    forged = await browser.post("/admin/login", data={"csrf": "guess", "secret": OPERATOR_SECRET})
    assert forged.status_code == 403
    assert "mpx_session" not in browser.cookies
    other_site = await browser.post(
        "/admin/login",
        data={"csrf": browser.cookies["mpx_signin"], "secret": OPERATOR_SECRET},
        headers={"origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert "mpx_session" not in browser.cookies
    await _as_operator(browser)
    no_token = await browser.post("/admin/logout", data={})
    assert no_token.status_code == 403
    assert (await browser.get("/admin/overview")).status_code == 200  # still signed in


async def test_the_session_cookie_is_httponly_and_samesite(
    browser: httpx.AsyncClient, seeded: Seeded
) -> None:
    form = await browser.get("/admin/login")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    response = await browser.post("/admin/login", data={"csrf": csrf, "secret": OPERATOR_SECRET})
    cookie = next(value for name, value in response.headers.multi_items() if value.startswith("mpx_session="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()


async def test_the_numbers_agree_to_the_token_and_the_cent(
    browser: httpx.AsyncClient, seeded: Seeded, ledger: Ledger
) -> None:
    await _as_operator(browser)
    period = seeded.period.label
    for tenant in TENANTS:
        invoice = await build_invoice(ledger, tenant, period)
        raw = await raw_totals(ledger, seeded.tenant_ids[tenant], seeded.period)
        exported = json.loads((await browser.get(f"/admin/invoices/{tenant}/{period}.json")).text)
        assert exported == json.loads(invoice.model_dump_json(by_alias=True))
        rows = list(
            csv.DictReader(io.StringIO((await browser.get(f"/admin/invoices/{tenant}/{period}.csv")).text))
        )
        lines = [row for row in rows if row["model"] != "TOTAL"]
        assert sum(int(row["requests"]) for row in lines) == raw["requests"]
        assert (
            sum(int(row["input_tokens"]) + int(row["cached_input_tokens"]) for row in lines) == raw["prompt"]
        )
        assert sum(int(row["cached_input_tokens"]) for row in lines) == raw["cached"]
        assert sum(int(row["output_tokens"]) for row in lines) == raw["completion"]
        csv_total = sum((Decimal(row["amount"]) for row in lines), Decimal(0))
        assert csv_total == invoice.totals.get("USD", Decimal(0))
        assert {row["amount"] for row in rows if row["model"] == "TOTAL"} == {
            str(amount) for amount in invoice.totals.values()
        }
        page = (await browser.get(f"/admin/invoices?period={period}&tenant={tenant}")).text
        for amount in invoice.totals.values():
            assert f"{amount:,} USD" in page
        tenants_page = (await browser.get(f"/admin/tenants?period={period}")).text
        row = tenants_page.split(f'href="/admin/tenants/{tenant}?')[1].split("</tr>")[0]
        assert f">{raw['requests']:,}<" in row
        assert f">{raw['prompt'] + raw['completion']:,}<" in row
    overview = (await browser.get(f"/admin/overview?period={period}")).text
    invoices = [await build_invoice(ledger, tenant, period) for tenant in TENANTS]
    revenue = sum((invoice.totals.get("USD", Decimal(0)) for invoice in invoices), Decimal(0))
    assert f"{revenue:,} USD" in overview


async def test_a_tenant_sees_only_its_own_data(browser: httpx.AsyncClient, seeded: Seeded) -> None:
    period = seeded.period.label
    signed = await sign_in(browser, seeded.keys["acme"])
    assert signed.status_code == 303
    assert signed.headers["location"] == "/admin/account"
    own = await browser.get("/admin/account")
    assert own.status_code == 200
    assert "acme" in own.text
    assert "globex" not in own.text
    assert "initech" not in own.text
    assert seeded.keys["acme"] not in own.text
    assert ADMIN_TOKEN not in own.text
    own_csv = await browser.get(f"/admin/account/invoices/{period}.csv")
    assert own_csv.status_code == 200
    assert "acme" in own_csv.text
    assert "globex" not in own_csv.text
    forbidden = [
        *OPERATOR_PAGES,
        "/admin/tenants/globex",
        "/admin/tenants/acme",
        "/admin/models/llama-70b",
        f"/admin/invoices/globex/{period}.csv",
        f"/admin/invoices/globex/{period}.json",
        f"/admin/invoices?tenant=globex&period={period}",
    ]
    for path in forbidden:
        response = await browser.get(path)
        assert response.status_code == 403, path
        assert "globex" not in response.text.replace("/admin/", "") or path.endswith("globex"), path
    for path in ("/admin/account?tenant=globex", f"/admin/account/invoices/{period}.csv?tenant=globex"):
        response = await browser.get(path)
        assert response.status_code in (200, 400, 422), path
        assert "globex" not in response.text.split("<main>")[-1].replace("tenant=globex", ""), path
    # The API behind the bearer token does not take a console session (or a tenant key) either.
    assert (await browser.get("/admin/v1/tenants")).status_code == 401


async def test_revoking_the_key_ends_the_tenant_session(
    browser: httpx.AsyncClient, seeded: Seeded, ledger: Ledger
) -> None:
    await sign_in(browser, seeded.keys["globex"])
    assert (await browser.get("/admin/account")).status_code == 200
    await revoke_key(ledger, seeded.key_ids["globex"])
    assert (await browser.get("/admin/account")).status_code == 303
    assert (await sign_in(browser, seeded.keys["globex"])).status_code == 401


async def test_bad_filters_are_named(browser: httpx.AsyncClient, seeded: Seeded) -> None:
    await _as_operator(browser)
    for query, named in (
        ("period=2026-13", "period"),
        ("colour=red", "colour"),
        ("tenant=Bad%20Name", "tenant"),
    ):
        response = await browser.get(f"/admin/invoices?{query}")
        assert response.status_code == 400, query
        assert named in response.text
    missing = await browser.get("/admin/tenants/nobody")
    assert missing.status_code == 404
    assert "nobody" in missing.text
    assert (await browser.get("/admin/models/not-a-model")).status_code == 404
    assert (await browser.get("/admin/no-such-page")).status_code == 404


def _rows(page: str, table: str) -> list[list[str]]:
    """The cells of a table's body rows, as text."""
    body = page.split(f'id="{table}">')[1]
    body = body.split("<tbody>")[1].split("</tbody>")[0]
    return [
        [cell.split(">", 1)[1].split("</td>")[0].strip() for cell in row.split("<td")[1:]]
        for row in body.split("<tr>")[1:]
    ]


async def test_the_model_page_shows_the_autoscalers_decisions_and_its_load_now(
    browser: httpx.AsyncClient, seeded: Seeded
) -> None:
    await _as_operator(browser)
    page = (await browser.get(f"/admin/models/llama-70b?period={seeded.previous.label}")).text
    started = seeded.previous.start.replace(minute=5)
    moments = [started + timedelta(days=days) for days in DECIDED_DAYS]
    hours = [moment.strftime("%Y-%m-%d %H:%M UTC") for moment in moments]
    assert _rows(page, "decisions") == [
        [hours[1], "serving/llama-70b", "3 → 2", "ScaleDownStabilizing", "stabilised at 2 over 300 s"],
        [hours[0], "serving/llama-70b", "1 → 3", "QueueDepth", "queue depth 24 over 1 x 8"],
    ]
    queue = "9 <small>(2 in gateways)</small>"  # 7 waiting in engines and 2 held by gateways
    assert _rows(page, "load-now") == [["serving/llama-70b", hours[2], "2", queue, "13", "75.0 %"]]
    chart = json.loads(
        page.split('<script type="application/json" id="replicas-chart">')[1].split("</script>")[0]
    )
    replicas, asked = chart["series"]
    assert asked["marks"] is True
    marked = {x: value for x, value in zip(chart["x"], asked["values"], strict=True) if value is not None}
    assert marked == {
        int(moments[0].timestamp()): 3,
        int(moments[1].timestamp()): 2,
    }
    # the one replica served from 00:05 on, throughout
    assert replicas["values"][0] == 0
    assert set(replicas["values"][1:]) == {1}
    # this month has no decisions, but the load now is the last reading whatever the period
    current = (await browser.get("/admin/models/llama-70b")).text
    assert _rows(current, "decisions") == [["No autoscaler decisions in this period."]]
    assert _rows(current, "load-now")[0][1] == hours[2]
    # and so is the number of replicas serving now (the seeded one still is)
    for shown in (page, current):
        assert "<span>Replicas now</span><b>1</b>" in shown
