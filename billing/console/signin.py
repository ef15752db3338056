"""Signing in: the secret a person pastes is the admin token (operator) or one of a tenant's API keys."""

from __future__ import annotations

import hmac

from sqlalchemy import select

from modelplex.billing.console.sessions import key_is_live
from modelplex.billing.console.viewer import OPERATOR, Viewer
from modelplex.billing.key_material import key_hash, looks_like_key
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import utcnow
from modelplex.billing.tables import ApiKey, Tenant


async def viewer_for(ledger: Ledger, admin_token: str, secret: str) -> Viewer | None:
    """Who `secret` signs in as, or None. The admin token is compared in constant time, whatever
    was pasted; a key is looked up by its keyed hash only."""
    secret = secret.strip()
    if hmac.compare_digest(secret.encode(), admin_token.encode()):
        return OPERATOR
    if not looks_like_key(secret):
        return None
    query = (
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_hash == key_hash(ledger.pepper, secret))
    )
    async with ledger.sessions() as session:
        found = (await session.execute(query)).one_or_none()
    if found is None or not key_is_live(found.ApiKey, utcnow()):
        return None
    return Viewer(
        role="tenant", tenant_id=found.Tenant.id, tenant_name=found.Tenant.name, key_id=found.ApiKey.id
    )
