"""Admin routes for tenants, API keys and plans."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from modelplex.billing import keystore, tenants
from modelplex.billing.api.pages import Page
from modelplex.billing.keystore import CreatedKey, KeyRecord
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import Instant
from modelplex.billing.schemas import Request
from modelplex.billing.tenants import PlanRecord, PlanSpec, PlanTerms, TenantRecord


class TenantCreate(Request):
    name: str
    plan: str | None = None


class TenantUpdate(Request):
    status: Literal["active", "suspended"] | None = None
    plan: str | None = None


class KeyCreate(Request):
    name: str = Field(default="", max_length=128)
    expires_at: Instant | None = None


def _tenant_routes(router: APIRouter, ledger: Ledger, changed: Callable[[], None]) -> None:
    @router.post("/tenants", status_code=201, tags=["tenants"])
    async def create_tenant(body: TenantCreate) -> TenantRecord:
        return await tenants.create_tenant(ledger, body.name, body.plan)

    @router.get("/tenants", tags=["tenants"])
    async def list_tenants() -> Page[TenantRecord]:
        return Page(data=await tenants.list_tenants(ledger))

    @router.get("/tenants/{tenant}", tags=["tenants"])
    async def get_tenant(tenant: str) -> TenantRecord:
        return await tenants.get_tenant(ledger, tenant)

    @router.patch("/tenants/{tenant}", tags=["tenants"])
    async def update_tenant(tenant: str, body: TenantUpdate) -> TenantRecord:
        record = await tenants.update_tenant(ledger, tenant, status=body.status, plan=body.plan)
        changed()
        return record


def _key_routes(router: APIRouter, ledger: Ledger, changed: Callable[[], None]) -> None:
    @router.post("/tenants/{tenant}/keys", status_code=201, tags=["keys"])
    async def create_key(tenant: str, body: KeyCreate) -> CreatedKey:
        """The plaintext key is in this response only; the ledger keeps just its keyed hash."""
        return await keystore.create_key(ledger, tenant, body.name, body.expires_at)

    @router.get("/tenants/{tenant}/keys", tags=["keys"])
    async def list_keys(tenant: str) -> Page[KeyRecord]:
        return Page(data=await keystore.list_keys(ledger, tenant))

    @router.delete("/keys/{key_id}", tags=["keys"])
    async def revoke_key(key_id: str) -> KeyRecord:
        record = await keystore.revoke_key(ledger, key_id)
        changed()
        return record


def _plan_routes(router: APIRouter, ledger: Ledger, changed: Callable[[], None]) -> None:
    @router.put("/plans/{name}", tags=["plans"])
    async def put_plan(name: str, body: PlanTerms) -> PlanRecord:
        """Create the plan or replace its limits."""
        record = await tenants.put_plan(ledger, PlanSpec(name=name, **body.model_dump()))
        changed()
        return record

    @router.get("/plans", tags=["plans"])
    async def list_plans() -> Page[PlanRecord]:
        return Page(data=await tenants.list_plans(ledger))


def accounts_router(ledger: Ledger, changed: Callable[[], None]) -> APIRouter:
    router = APIRouter()
    _tenant_routes(router, ledger, changed)
    _key_routes(router, ledger, changed)
    _plan_routes(router, ledger, changed)
    return router
