"""What the local stack puts into the ledger before serving: the demo tenant and key, and prices."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from modelplex.billing.authority import LedgerKeyAuthority
from modelplex.billing.errors import NotFound
from modelplex.billing.gpu_costs import LOCAL_CPU_PRODUCT, ensure_default_cost
from modelplex.billing.keystore import create_key
from modelplex.billing.ledger import Ledger
from modelplex.billing.price_history import PriceTerms, apply_deployment_pricing
from modelplex.billing.settings import BillingSettings
from modelplex.billing.tenants import create_tenant, get_tenant
from modelplex.local.templates import WorkerTemplate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoAccess:
    api_key: str
    admin_token: str


def _secret_file(path: Path, make: str | None = None) -> str | None:
    if path.exists():
        return path.read_text().strip()
    if make is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(make + "\n")
    return make


def billing_settings(local_dir: Path) -> BillingSettings:
    """The ledger's settings from the environment, plus an admin token kept in the state folder."""
    base = BillingSettings()
    token = base.admin_token or SecretStr(
        _secret_file(local_dir / "admin-token", secrets.token_urlsafe(24)) or ""
    )
    return base.model_copy(update={"admin_token": token, "database_url": base.resolved_database_url()})


async def _demo_key(ledger: Ledger, tenant: str, key_file: Path) -> str:
    try:
        await get_tenant(ledger, tenant)
    except NotFound:
        await create_tenant(ledger, tenant)
        log.info("Created demo tenant name=%s", tenant)
    saved = await asyncio.to_thread(_secret_file, key_file)
    if saved and await LedgerKeyAuthority(ledger).authenticate(saved) is not None:
        return saved
    created = await create_key(ledger, tenant, name="modelplex up")
    await asyncio.to_thread(_replace_secret, key_file, created.plaintext)
    return created.plaintext


def _replace_secret(path: Path, value: str) -> None:
    path.unlink(missing_ok=True)
    _secret_file(path, value)


async def _record_prices(ledger: Ledger, templates: list[WorkerTemplate]) -> None:
    for template in templates:
        pricing = template.manifest.deployment.spec.pricing
        if pricing is not None:
            terms = PriceTerms.model_validate(pricing.model_dump(by_alias=True, mode="json"))
            source = f"ModelDeployment {template.deployment} ({template.manifest.path})"
            await apply_deployment_pricing(ledger, template.served_name, terms, source=source)


async def prepare(
    billing: BillingSettings, local_dir: Path, tenant: str, templates: list[WorkerTemplate]
) -> DemoAccess:
    """Migrate the ledger, make sure the demo tenant has a working key, record declared prices."""
    ledger = await Ledger.connect(billing)
    try:
        api_key = await _demo_key(ledger, tenant, local_dir / "demo-key")
        await _record_prices(ledger, templates)
    finally:
        await ledger.close()
    admin = billing.admin_token.get_secret_value() if billing.admin_token else ""
    return DemoAccess(api_key=api_key, admin_token=admin)


async def ensure_cpu_cost(billing: BillingSettings, per_hour: str) -> None:
    """The local CPU profile's cost, unless the ledger already has one for `cpu`."""
    ledger = await Ledger.connect(billing)
    try:
        if await ensure_default_cost(ledger, LOCAL_CPU_PRODUCT, per_hour, source="modelplex up default"):
            log.info("Recorded local CPU cost gpu_product=%s per_hour=%s", LOCAL_CPU_PRODUCT, per_hour)
    finally:
        await ledger.close()
