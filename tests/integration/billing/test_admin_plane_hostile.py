"""The admin API against hostile callers, on SQLite and PostgreSQL: tenant keys never act on it (not
even its schema or docs), injection strings are stored intact or refused with a 4xx, out-of-range
values are 422 naming the field, and without an admin token the whole API is off."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from modelplex.billing.api import build_admin_app
from modelplex.billing.authority import LedgerKeyAuthority
from modelplex.billing.ledger import Ledger
from modelplex.billing.settings import BillingSettings
from mpxtest.ledger import ADMIN_TOKEN

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INJECTIONS = [
    "'; DROP TABLE tenants; --",
    "Robert'); DROP TABLE api_keys;--",
    '" OR "1"="1',
    "' OR 1=1 --",
    "%' OR '%'='",
    "\\'; SELECT pg_sleep(5); --",
    "$$; DELETE FROM plans; $$",
    "ключ 🔑 مفتاح",
    "\u202ereversed\u202c",
    "e\u0301 zero\u200bwidth",
    "tab\tnew\nline\rreturn",
]
REFUSED_TEXT = ["nul\x00byte", "\x00"]


@pytest.fixture
async def admin(ledger: Ledger) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_admin_app(ledger))
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
        yield client


async def _tenant_with_key(admin: httpx.AsyncClient) -> tuple[str, str]:
    assert (await admin.put("/admin/v1/plans/pro", json={}, headers=ADMIN)).status_code == 200
    assert (await admin.post("/admin/v1/tenants", json={"name": "acme"}, headers=ADMIN)).status_code == 201
    created = await admin.post("/admin/v1/tenants/acme/keys", json={"name": "ci"}, headers=ADMIN)
    assert created.status_code == 201
    return created.json()["plaintext"], created.json()["key"]["id"]


def _operations(schema: dict[str, Any], key_id: str) -> list[tuple[str, str]]:
    """Every (method, path) of the schema, its path parameters filled with names that exist."""
    values = {"tenant": "acme", "key_id": key_id, "name": "pro", "period": "2026-03"}
    found: list[tuple[str, str]] = []
    for template, methods in schema["paths"].items():
        path = template
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"no value for a parameter of {template}"
        found.extend((method.upper(), path) for method in methods)
    return found


async def test_a_tenant_key_can_never_act_on_the_admin_plane(
    admin: httpx.AsyncClient, ledger: Ledger
) -> None:
    tenant_key, key_id = await _tenant_with_key(admin)
    schema = (await admin.get("/admin/v1/openapi.json", headers=ADMIN)).json()
    operations = _operations(schema, key_id)
    assert len(operations) >= 12
    operations += [("GET", "/admin/v1/openapi.json"), ("GET", "/admin/v1/docs"), ("GET", "/admin/v1/nope")]
    attempts = [
        [("authorization", f"Bearer {tenant_key}")],
        [("authorization", tenant_key)],
        [("x-api-key", tenant_key)],
        [("authorization", f"Bearer {tenant_key}"), ("authorization", f"Bearer {ADMIN_TOKEN}")],
        [("authorization", f"Bearer {ADMIN_TOKEN}"), ("authorization", f"Bearer {tenant_key}")],
        [("authorization", f"Bearer {ADMIN_TOKEN} {tenant_key}")],
    ]
    body = {"name": "evil", "status": "suspended", "model": "m", "inputPer1M": 0, "outputPer1M": 0}
    for method, path in operations:
        for headers in attempts:
            response = await admin.request(method, path, headers=headers, json=body)
            assert response.status_code in (400, 401), (method, path, headers, response.text)
            assert set(response.json()) == {"error"}
            assert "paths" not in response.text  # neither the schema
            assert "swagger" not in response.text.lower()  # nor the docs page
    # Nothing changed: the tenant is active, its key works, no tenant or price was added.
    tenants = (await admin.get("/admin/v1/tenants", headers=ADMIN)).json()["data"]
    assert [(t["name"], t["status"]) for t in tenants] == [("acme", "active")]
    assert (await admin.get("/admin/v1/prices", headers=ADMIN)).json()["data"] == []
    assert await LedgerKeyAuthority(ledger).authenticate(tenant_key) is not None


async def test_without_an_admin_token_the_admin_api_is_off(billing_settings: BillingSettings) -> None:
    settings = billing_settings.model_copy(update={"admin_token": None})
    ledger = await Ledger.connect(settings)
    try:
        transport = httpx.ASGITransport(app=build_admin_app(ledger))
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
            for path in ("/admin/v1/tenants", "/admin/v1/openapi.json", "/admin/v1/docs", "/admin/v1/x"):
                for headers in ({}, ADMIN):
                    response = await client.get(path, headers=headers)
                    assert response.status_code == 404, path
                    assert response.json()["error"]["code"] == "admin_api_off"
                    assert "MODELPLEX_BILLING_ADMIN_TOKEN" in response.json()["error"]["message"]
    finally:
        await ledger.close()


async def test_injection_strings_in_key_names_come_back_intact(admin: httpx.AsyncClient) -> None:
    await _tenant_with_key(admin)
    for name in INJECTIONS:
        created = await admin.post("/admin/v1/tenants/acme/keys", json={"name": name}, headers=ADMIN)
        assert created.status_code == 201, (name, created.text)
        assert created.json()["key"]["name"] == name
    listed = (await admin.get("/admin/v1/tenants/acme/keys", headers=ADMIN)).json()["data"]
    assert [k["name"] for k in listed] == ["ci", *INJECTIONS]
    tenants = (await admin.get("/admin/v1/tenants", headers=ADMIN)).json()["data"]
    assert [t["name"] for t in tenants] == ["acme"]  # every table still there, nothing deleted


async def test_text_no_database_can_store_is_refused_naming_the_field(admin: httpx.AsyncClient) -> None:
    await _tenant_with_key(admin)
    for name in REFUSED_TEXT:
        response = await admin.post("/admin/v1/tenants/acme/keys", json={"name": name}, headers=ADMIN)
        assert response.status_code == 422, repr(name)
        assert response.json()["error"]["param"] == "name"
    lone_surrogate = b'{"name": "\\ud800 half a pair"}'
    response = await admin.post(
        "/admin/v1/tenants/acme/keys",
        content=lone_surrogate,
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "name"
    for path, param in [
        ("/admin/v1/tenants/ac%00me", "tenant"),
        ("/admin/v1/usage?model=m%00", "model"),
        ("/admin/v1/prices?model=%00", "model"),
    ]:
        response = await admin.get(path, headers=ADMIN)
        assert response.status_code == 422, path
        assert response.json()["error"]["param"] == param
    bad_json = await admin.post(
        "/admin/v1/tenants", content=b'{"name": ', headers={**ADMIN, "content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "invalid_json"


async def test_injection_strings_as_names_and_references_are_refused_or_not_found(
    admin: httpx.AsyncClient, ledger: Ledger
) -> None:
    await _tenant_with_key(admin)
    for text in INJECTIONS:
        tenant = await admin.post("/admin/v1/tenants", json={"name": text}, headers=ADMIN)
        assert tenant.status_code == 422, text
        assert tenant.json()["error"]["param"] == "name"
        segment = quote(text, safe="")
        plan = await admin.put(f"/admin/v1/plans/{segment}", json={}, headers=ADMIN)
        assert plan.status_code == 422, text
        assert plan.json()["error"]["param"] == "name"
        usage = await admin.get("/admin/v1/usage", params={"tenant": text}, headers=ADMIN)
        assert usage.status_code == 404, text
        assert (await admin.get(f"/admin/v1/tenants/{segment}", headers=ADMIN)).status_code == 404
        assert (await admin.delete(f"/admin/v1/keys/{segment}", headers=ADMIN)).status_code == 404
        assert (await admin.get(f"/admin/v1/invoices/{segment}/2026-03", headers=ADMIN)).status_code == 404
        assert (
            await admin.get("/admin/v1/tenants", headers={b"authorization": f"Bearer {text}".encode()})
        ).status_code == 401
        assert await LedgerKeyAuthority(ledger).authenticate("mpx-" + text) is None
    tenants = (await admin.get("/admin/v1/tenants", headers=ADMIN)).json()["data"]
    assert [t["name"] for t in tenants] == ["acme"]


OUT_OF_RANGE: list[tuple[str, str, Any, str]] = [
    ("PUT", "/admin/v1/plans/pro", {"requestsPerMinute": 2**63}, "requestsPerMinute"),
    ("PUT", "/admin/v1/plans/pro", {"tokensPerMinute": 10**30}, "tokensPerMinute"),
    ("PUT", "/admin/v1/plans/pro", {"concurrentRequests": -1}, "concurrentRequests"),
    ("PUT", "/admin/v1/plans/pro", {"monthlyTokenBudget": -(2**70)}, "monthlyTokenBudget"),
    ("PUT", "/admin/v1/plans/pro", {"monthlySpendBudget": "-5"}, "monthlySpendBudget"),
    ("PUT", "/admin/v1/plans/pro", {"monthlySpendBudget": "NaN"}, "monthlySpendBudget"),
    ("PUT", "/admin/v1/plans/pro", {"monthlySpendBudget": "Infinity"}, "monthlySpendBudget"),
    ("PUT", "/admin/v1/plans/pro", {"monthlySpendBudget": "1e30"}, "monthlySpendBudget"),
    ("PUT", "/admin/v1/plans/pro", {"requestsPerMinute": 1.5}, "requestsPerMinute"),
    ("POST", "/admin/v1/prices", {"model": "m", "inputPer1M": 1e300, "outputPer1M": 1}, "inputPer1M"),
    ("POST", "/admin/v1/prices", {"model": "m", "inputPer1M": "1", "outputPer1M": "-0.1"}, "outputPer1M"),
    ("POST", "/admin/v1/prices", {"model": "m", "inputPer1M": "inf", "outputPer1M": 1}, "inputPer1M"),
    ("POST", "/admin/v1/prices", {"model": "m" * 300, "inputPer1M": 1, "outputPer1M": 1}, "model"),
    (
        "POST",
        "/admin/v1/prices",
        {"model": "m", "inputPer1M": 1, "outputPer1M": 1, "effectiveFrom": "0001-01-01T00:00:00+01:00"},
        "effectiveFrom",
    ),
    ("POST", "/admin/v1/tenants/acme/keys", {"expiresAt": "9999-12-31T23:59:59-23:59"}, "expiresAt"),
    ("POST", "/admin/v1/tenants/acme/keys", {"name": "k" * 129}, "name"),
    ("GET", "/admin/v1/invoices/acme/9999-12", None, "period"),
    ("GET", "/admin/v1/usage?start=0001-01-01T00:00:00%2B05:00", None, "start"),
    ("GET", "/admin/v1/usage?end=99999-01-01", None, "end"),
]


@pytest.mark.parametrize(("method", "path", "body", "param"), OUT_OF_RANGE)
async def test_out_of_range_values_are_422_naming_the_field(
    admin: httpx.AsyncClient, method: str, path: str, body: Any, param: str
) -> None:
    await admin.post("/admin/v1/tenants", json={"name": "acme"}, headers=ADMIN)
    content = None if body is None else json.dumps(body).encode()
    headers = {**ADMIN, "content-type": "application/json"}
    response = await admin.request(method, path, content=content, headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (param, "invalid_request_error")


async def test_the_largest_values_the_columns_hold_round_trip(admin: httpx.AsyncClient) -> None:
    # A budget a double holds exactly: SQLite keeps NUMERIC as a double (see docs/security.md).
    biggest = 2**63 - 1
    limits = {
        "requestsPerMinute": biggest,
        "monthlyTokenBudget": biggest,
        "monthlySpendBudget": "9999999.5",
    }
    stored = await admin.put("/admin/v1/plans/max", json=limits, headers=ADMIN)
    assert stored.status_code == 200, stored.text
    (plan,) = (await admin.get("/admin/v1/plans", headers=ADMIN)).json()["data"]
    assert (plan["requestsPerMinute"], plan["monthlyTokenBudget"]) == (biggest, biggest)
    assert plan["monthlySpendBudget"] == "9999999.5"
