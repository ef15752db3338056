"""The ledger's KeyAuthority: checks API keys and budgets for the gateway, fast and cached.

Answers are cached in-process for `auth_cache_seconds` (default 5 s), keyed by the key's HMAC so the
plaintext is never kept. A revocation, suspension or expiry is therefore honoured within that time.
While the database is unreachable, the last answer for a key or tenant is served however old it is
(serving goes on; a key never seen before cannot be checked and fails).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from modelplex.billing.cache import TtlCache
from modelplex.billing.contracts import BudgetStatus, Principal, TokenPrice
from modelplex.billing.key_material import key_hash, looks_like_key
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import utcnow
from modelplex.billing.price_history import current_price
from modelplex.billing.statements import budget_status
from modelplex.billing.tables import ApiKey, Plan, Tenant
from modelplex.billing.tenants import plan_limits

_log = logging.getLogger(__name__)
# What a database that is down or gone looks like from here (drivers' connection errors are OSErrors).
UNREACHABLE = (SQLAlchemyError, OSError)
_Found = tuple[Principal, datetime | None]  # the principal and when its key expires


class LedgerKeyAuthority:
    def __init__(
        self, ledger: Ledger, clock: Callable[[], float] = time.monotonic, cache_entries: int = 10_000
    ) -> None:
        ttl = ledger.settings.auth_cache_seconds
        self._ledger = ledger
        self._keys: TtlCache[str, _Found | None] = TtlCache(ttl, cache_entries, clock)
        # Digests no key has, apart: a flood of made-up keys then evicts only other made-up keys,
        # never the last answers for real ones that serving falls back on while the ledger is away.
        self._unknown: TtlCache[str, None] = TtlCache(ttl, cache_entries, clock)
        self._budgets: TtlCache[str, BudgetStatus] = TtlCache(ttl, clock=clock)
        self._prices: TtlCache[str, TokenPrice | None] = TtlCache(ttl, clock=clock)

    async def authenticate(self, api_key: str) -> Principal | None:
        if not looks_like_key(api_key):
            return None
        digest = key_hash(self._ledger.pepper, api_key)
        fresh, found = self._keys.get(digest)
        if not fresh and self._unknown.get(digest)[0]:
            return None
        if not fresh:
            try:
                found = await self._lookup(digest)
            except UNREACHABLE as error:
                known, found = self._keys.last(digest)
                if not known and not self._unknown.last(digest)[0]:
                    raise
                _log.warning(
                    "Served a cached key check: the ledger is unreachable error=%s", type(error).__name__
                )
            else:
                self._remember(digest, found)
        if found is None:
            return None
        principal, expires_at = found
        return principal if expires_at is None or expires_at > utcnow() else None

    def _remember(self, digest: str, found: _Found | None) -> None:
        if found is not None or self._keys.last(digest)[0]:  # a real key, or one revoked since
            self._keys.put(digest, found)
        else:
            self._unknown.put(digest, None)

    async def _lookup(self, digest: str) -> _Found | None:
        query = (
            select(ApiKey, Tenant, Plan)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .outerjoin(Plan, Plan.id == Tenant.plan_id)
            .where(ApiKey.key_hash == digest)
        )
        async with self._ledger.sessions() as session:
            row = (await session.execute(query)).one_or_none()
        if row is None or row.ApiKey.revoked_at is not None:
            return None
        principal = Principal(
            tenant_id=row.Tenant.id,
            tenant_name=row.Tenant.name,
            key_id=row.ApiKey.id,
            tenant_suspended=row.Tenant.status == "suspended",
            limits=plan_limits(row.Plan),
        )
        return principal, row.ApiKey.expires_at

    async def budget(self, tenant_id: str) -> BudgetStatus:
        fresh, status = self._budgets.get(tenant_id)
        if fresh and status is not None:
            return status
        try:
            status = await budget_status(self._ledger, tenant_id)
        except UNREACHABLE as error:
            known, stale = self._budgets.last(tenant_id)
            if not known or stale is None:
                raise
            _log.warning("Served a cached budget: the ledger is unreachable error=%s", type(error).__name__)
            return stale
        self._budgets.put(tenant_id, status)
        return status

    async def price(self, model: str) -> TokenPrice | None:
        fresh, price = self._prices.get(model)
        if fresh:
            return price
        try:
            record = await current_price(self._ledger, model)
        except UNREACHABLE:
            known, price = self._prices.last(model)
            if not known:
                raise
            return price
        price = (
            None
            if record is None
            else TokenPrice(
                currency=record.currency,
                input_per_1m=record.input_per_1m,
                cached_input_per_1m=record.cached_input_per_1m,
                output_per_1m=record.output_per_1m,
            )
        )
        self._prices.put(model, price)
        return price

    def forget(self) -> None:
        """Drop every cached answer (after a change made in this process)."""
        self._keys.clear()
        self._unknown.clear()
        self._budgets.clear()
        self._prices.clear()
