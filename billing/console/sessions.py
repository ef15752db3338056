"""Console sessions: a random token in an HttpOnly cookie, its keyed hash in the ledger.

Kept in the database rather than in a signed cookie so that every gateway replica sees the same
sessions and signing out ends a session everywhere at once. A tenant's session lives only while the
key it signed in with does: revoking or expiring the key ends the session at the next page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from modelplex.billing.console.viewer import OPERATOR, Viewer
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import utcnow
from modelplex.billing.tables import ApiKey, ConsoleSession, Tenant

LIFETIME = timedelta(hours=8)
_TOKEN_BYTES = 32


def session_hash(pepper: bytes, token: str) -> str:
    return hmac.new(pepper, b"console-session\0" + token.encode(), hashlib.sha256).hexdigest()


def csrf_token(pepper: bytes, token: str) -> str:
    """The value a session's forms must send back: derived from the session, so nothing is stored,
    and unknowable to another site (which cannot read the cookie)."""
    return hmac.new(pepper, b"console-csrf\0" + token.encode(), hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


async def open_session(ledger: Ledger, viewer: Viewer, now: datetime | None = None) -> str:
    """A new session for `viewer`; returns the cookie's token (never stored as such)."""
    moment = now or utcnow()
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    async with ledger.transaction() as session:
        await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= moment))
        session.add(
            ConsoleSession(
                id_hash=session_hash(ledger.pepper, token),
                role=viewer.role,
                tenant_id=viewer.tenant_id,
                key_id=viewer.key_id,
                created_at=moment,
                expires_at=moment + LIFETIME,
            )
        )
    return token


async def find_session(ledger: Ledger, token: str, now: datetime | None = None) -> Viewer | None:
    """The viewer of a live session, or None (unknown, expired, or its key no longer valid)."""
    if not token or len(token) > 128:
        return None
    moment = now or utcnow()
    async with ledger.sessions() as session:
        row = await session.get(ConsoleSession, session_hash(ledger.pepper, token))
        if row is None or row.expires_at <= moment:
            return None
        if row.role == "operator":
            return OPERATOR
        query = (
            select(ApiKey, Tenant)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.id == row.key_id, ApiKey.tenant_id == row.tenant_id)
        )
        found = (await session.execute(query)).one_or_none()
    if found is None or not key_is_live(found.ApiKey, moment):
        return None
    return Viewer(
        role="tenant", tenant_id=found.Tenant.id, tenant_name=found.Tenant.name, key_id=found.ApiKey.id
    )


def key_is_live(key: ApiKey, moment: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > moment)


async def close_session(ledger: Ledger, token: str) -> None:
    async with ledger.transaction() as session:
        await session.execute(
            delete(ConsoleSession).where(ConsoleSession.id_hash == session_hash(ledger.pepper, token))
        )
