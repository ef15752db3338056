"""API keys and the KeyAuthority on both databases: hashing, caching, revocation, suspension, budgets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from modelplex.billing import keystore, price_history, tenants
from modelplex.billing.authority import LedgerKeyAuthority
from modelplex.billing.errors import InvalidInput, NotFound
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import utcnow
from modelplex.billing.price_history import PriceTerms
from modelplex.billing.settings import BillingSettings
from modelplex.billing.tables import ApiKey
from modelplex.billing.tenants import PlanSpec
from mpxtest.ledger import PEPPER, Clock, usage_event

pytestmark = pytest.mark.anyio


async def test_key_is_shown_once_and_only_its_keyed_hash_is_stored(ledger: Ledger) -> None:
    await tenants.create_tenant(ledger, "acme")
    created = await keystore.create_key(ledger, "acme", name="ci")
    key = created.plaintext
    assert key.startswith("mpx-")
    assert len(key) >= 40
    async with ledger.sessions() as session:
        row = (await session.execute(select(ApiKey))).scalar_one()
    assert row.key_hash == hmac.new(PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest()
    assert row.key_hash != hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[:12]
    assert key not in repr(vars(row))
    assert "plaintext" not in (await keystore.list_keys(ledger, "acme"))[0].to_json()


async def test_authenticate_returns_the_principal_with_plan_limits(ledger: Ledger) -> None:
    await tenants.put_plan(ledger, PlanSpec(name="pro", requests_per_minute=60, allowed_models=["m2", "m1"]))
    tenant = await tenants.create_tenant(ledger, "acme", plan="pro")
    created = await keystore.create_key(ledger, "acme")
    principal = await LedgerKeyAuthority(ledger).authenticate(created.plaintext)
    assert principal is not None
    assert (principal.tenant_id, principal.tenant_name, principal.key_id) == (
        tenant.id,
        "acme",
        created.key.id,
    )
    assert principal.limits.requests_per_minute == 60
    assert principal.limits.allowed_models == frozenset({"m1", "m2"})
    assert principal.tenant_suspended is False


async def test_unknown_and_malformed_keys_are_refused(ledger: Ledger) -> None:
    authority = LedgerKeyAuthority(ledger)
    assert await authority.authenticate("mpx-" + "x" * 43) is None
    assert await authority.authenticate("sk-not-ours") is None
    assert await authority.authenticate("") is None


async def test_revocation_is_honoured_once_the_cache_expires(ledger: Ledger) -> None:
    await tenants.create_tenant(ledger, "acme")
    created = await keystore.create_key(ledger, "acme")
    clock = Clock()
    authority = LedgerKeyAuthority(ledger, clock=clock)
    assert await authority.authenticate(created.plaintext) is not None

    await keystore.revoke_key(ledger, created.key.id)
    clock.now += 1  # within auth_cache_seconds (5 s): the cached answer stands
    assert await authority.authenticate(created.plaintext) is not None
    clock.now += 5
    assert await authority.authenticate(created.plaintext) is None


async def test_revocation_shows_within_seconds_in_real_time(billing_settings: BillingSettings) -> None:
    fast = billing_settings.model_copy(update={"auth_cache_seconds": 0.3})
    ledger = await Ledger.connect(fast)
    try:
        await tenants.create_tenant(ledger, "acme")
        created = await keystore.create_key(ledger, "acme")
        authority = LedgerKeyAuthority(ledger)
        assert await authority.authenticate(created.plaintext) is not None
        await keystore.revoke_key(ledger, created.plaintext)  # by the key itself this time
        await asyncio.sleep(0.35)
        assert await authority.authenticate(created.plaintext) is None
    finally:
        await ledger.close()


async def test_suspended_tenant_keys_stop_working(ledger: Ledger) -> None:
    await tenants.create_tenant(ledger, "acme")
    created = await keystore.create_key(ledger, "acme")
    authority = LedgerKeyAuthority(ledger)
    await tenants.update_tenant(ledger, "acme", status="suspended")
    authority.forget()
    principal = await authority.authenticate(created.plaintext)
    assert principal is not None
    assert principal.tenant_suspended is True

    await tenants.update_tenant(ledger, "acme", status="active")
    authority.forget()
    principal = await authority.authenticate(created.plaintext)
    assert principal is not None
    assert principal.tenant_suspended is False


async def test_expired_keys_are_refused(ledger: Ledger) -> None:
    await tenants.create_tenant(ledger, "acme")
    created = await keystore.create_key(ledger, "acme", expires_at=utcnow() + timedelta(days=1))
    authority = LedgerKeyAuthority(ledger)
    assert await authority.authenticate(created.plaintext) is not None
    async with ledger.transaction() as session:
        await session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    authority.forget()
    assert await authority.authenticate(created.plaintext) is None
    with pytest.raises(InvalidInput) as past:
        await keystore.create_key(ledger, "acme", expires_at=utcnow() - timedelta(days=1))
    assert past.value.param == "expiresAt"


async def test_key_operations_on_unknown_things_name_the_field(ledger: Ledger) -> None:
    with pytest.raises(NotFound) as tenant:
        await keystore.create_key(ledger, "nobody")
    assert tenant.value.param == "tenant"
    with pytest.raises(NotFound) as key:
        await keystore.revoke_key(ledger, "key_0000")
    assert key.value.param == "key"


async def test_budget_counts_this_months_tokens_and_spend(ledger: Ledger) -> None:
    plan = PlanSpec(name="small", monthly_token_budget=10_000, monthly_spend_budget="1.00")
    await tenants.put_plan(ledger, plan)
    tenant = await tenants.create_tenant(ledger, "acme", plan="small")
    now = utcnow()
    await price_history.set_price(
        ledger, "m1", PriceTerms(input_per_1m="100", output_per_1m="200"), now - timedelta(days=40)
    )
    last_month = now - timedelta(days=35)
    await LedgerSink(ledger).ingest(
        [
            usage_event("a", tenant_id=tenant.id, at=now, prompt=3000, completion=1000),
            usage_event("old", tenant_id=tenant.id, at=last_month, prompt=10**6, completion=10**6),
        ]
    )
    status = await LedgerKeyAuthority(ledger).budget(tenant.id)
    # 3,000 in * 100 + 1,000 out * 200, per 1M = 0.3 + 0.2
    assert (status.tokens_used, status.spend_used) == (4000, Decimal("0.5"))
    assert (status.tokens_remaining, status.spend_remaining) == (6000, Decimal("0.5"))
    assert not status.exhausted

    await LedgerSink(ledger).ingest(
        [usage_event("b", tenant_id=tenant.id, at=now, prompt=7000, completion=0)]
    )
    assert (await LedgerKeyAuthority(ledger).budget(tenant.id)).exhausted
    with pytest.raises(NotFound):
        await LedgerKeyAuthority(ledger).budget("tnt_missing")
