"""The admin HTTP API on both databases: auth, CRUD, usage, invoices, OpenAI-style errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelplex.billing.authority import LedgerKeyAuthority
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import Ledger
from mpxtest.ledger import ADMIN_TOKEN, usage_event

pytestmark = pytest.mark.anyio


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_requests_without_the_admin_token_are_refused(admin: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
        response = await admin.get("/admin/v1/tenants", headers=headers)
        assert response.status_code == 401
        assert error_of(response)["type"] == "authentication_error"


async def test_openapi_schema_is_published_to_admins(admin: httpx.AsyncClient) -> None:
    schema = (await admin.get("/admin/v1/openapi.json")).json()
    assert {
        "/admin/v1/tenants",
        "/admin/v1/prices",
        "/admin/v1/usage",
        "/admin/v1/invoices/{tenant}/{period}",
    } <= set(schema["paths"])


async def test_tenant_key_and_suspension_flow(
    admin: httpx.AsyncClient, authority: LedgerKeyAuthority
) -> None:
    plan = await admin.put(
        "/admin/v1/plans/pro", json={"requestsPerMinute": 60, "monthlySpendBudget": "25.5"}
    )
    assert plan.status_code == 200
    assert plan.json()["monthlySpendBudget"] == "25.5"
    created = await admin.post("/admin/v1/tenants", json={"name": "acme", "plan": "pro"})
    assert created.status_code == 201
    assert created.json()["plan"] == "pro"
    key = await admin.post("/admin/v1/tenants/acme/keys", json={"name": "ci"})
    assert key.status_code == 201
    plaintext = key.json()["plaintext"]
    listed = (await admin.get("/admin/v1/tenants/acme/keys")).json()
    assert listed["object"] == "list"
    assert plaintext not in str(listed)

    principal = await authority.authenticate(plaintext)
    assert principal is not None
    assert principal.limits.requests_per_minute == 60
    suspended = await admin.patch("/admin/v1/tenants/acme", json={"status": "suspended"})
    assert suspended.json()["status"] == "suspended"
    principal = await authority.authenticate(plaintext)
    assert principal is not None
    assert principal.tenant_suspended

    revoked = await admin.delete(f"/admin/v1/keys/{key.json()['key']['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revokedAt"]
    assert await authority.authenticate(plaintext) is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m1", "inputPer1M": "-1", "outputPer1M": "1"}, "inputPer1M"),
        ({"model": "m1", "inputPer1M": "1", "outputPer1M": "lots"}, "outputPer1M"),
        ({"model": "m1", "inputPer1M": "1", "outputPer1M": "1", "currency": "ABC"}, "currency"),
        ({"model": "m1", "outputPer1M": "1"}, "inputPer1M"),
        ({"model": "m1", "inputPer1M": "1", "outputPer1M": "1", "effectiveFrom": "soon"}, "effectiveFrom"),
        ({"model": "m1", "inputPer1M": "1", "outputPer1M": "1", "colour": "red"}, "colour"),
    ],
)
async def test_bad_prices_are_422_naming_the_field(
    admin: httpx.AsyncClient, body: dict[str, str], param: str
) -> None:
    response = await admin.post("/admin/v1/prices", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    assert param in error["message"] or error["code"] == "invalid_value"


async def test_unknown_names_are_404_and_duplicates_409(admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/admin/v1/tenants", json={"name": "acme"})).status_code == 201
    duplicate = await admin.post("/admin/v1/tenants", json={"name": "acme"})
    assert duplicate.status_code == 409
    assert error_of(duplicate)["param"] == "name"
    cases = [
        ("/admin/v1/tenants/nobody", "tenant"),
        ("/admin/v1/invoices/nobody/2026-03", "tenant"),
        ("/admin/v1/usage?tenant=nobody", "tenant"),
        ("/admin/v1/usage?model=nothing", "model"),
        ("/admin/v1/prices?model=nothing", "model"),
    ]
    for path, param in cases:
        response = await admin.get(path)
        assert response.status_code == 404, path
        assert error_of(response)["param"] == param
    no_plan = await admin.post("/admin/v1/tenants", json={"name": "beta", "plan": "gold"})
    assert no_plan.status_code == 404
    assert error_of(no_plan)["param"] == "plan"
    assert (await admin.delete("/admin/v1/keys/key_missing")).status_code == 404


async def test_malformed_period_and_bad_query_values_are_422(admin: httpx.AsyncClient) -> None:
    await admin.post("/admin/v1/tenants", json={"name": "acme"})
    for path, param in [
        ("/admin/v1/invoices/acme/2026-13", "period"),
        ("/admin/v1/invoices/acme/2026-03?format=pdf", "format"),
        ("/admin/v1/usage?granularity=week", "granularity"),
        ("/admin/v1/usage?start=yesterday", "start"),
    ]:
        response = await admin.get(path)
        assert response.status_code == 422, path
        assert error_of(response)["param"] == param


async def test_usage_and_invoice_endpoints(admin: httpx.AsyncClient, ledger: Ledger) -> None:
    tenant = (await admin.post("/admin/v1/tenants", json={"name": "acme"})).json()
    price = {"model": "m1", "inputPer1M": "2", "outputPer1M": 4, "effectiveFrom": "2026-03-01T00:00:00Z"}
    assert (await admin.post("/admin/v1/prices", json=price)).status_code == 201
    await LedgerSink(ledger).ingest(
        [usage_event("r1", tenant_id=tenant["id"], prompt=250_000, completion=125_000)]
    )

    usage = await admin.get("/admin/v1/usage?start=2026-03-01&end=2026-04-01&granularity=day&tenant=acme")
    assert [(r["bucket"], r["promptTokens"]) for r in usage.json()["data"]] == [
        ("2026-03-10T00:00:00Z", 250_000)
    ]

    invoice = (await admin.get("/admin/v1/invoices/acme/2026-03")).json()
    assert invoice["totals"] == {"USD": "1.00"}  # 250,000 * 2 + 125,000 * 4, per 1M = 0.5 + 0.5
    exported = await admin.get("/admin/v1/invoices/acme/2026-03?format=csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines()[-1].endswith(",1.00")
