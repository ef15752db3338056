"""API keys in the database: created (plaintext returned once), listed, revoked."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.errors import InvalidInput, NotFound
from modelplex.billing.key_material import display_prefix, key_hash, looks_like_key, new_key
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import utcnow
from modelplex.billing.schemas import Record
from modelplex.billing.tables import ApiKey
from modelplex.billing.tenants import find_tenant

_log = logging.getLogger(__name__)


class KeyRecord(Record):
    """What is stored about a key: never the key itself."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class CreatedKey(Record):
    key: KeyRecord
    plaintext: str  # shown once, never stored


async def create_key(
    ledger: Ledger, tenant: str, name: str = "", expires_at: datetime | None = None
) -> CreatedKey:
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the expiry must be in the future", param="expiresAt")
    if len(name) > 128:
        raise InvalidInput("a key name has at most 128 characters", param="name")
    plaintext = new_key()
    async with ledger.transaction() as session:
        owner = await find_tenant(session, tenant)
        row = ApiKey(
            id="key_" + secrets.token_hex(8),
            tenant_id=owner.id,
            name=name,
            prefix=display_prefix(plaintext),
            key_hash=key_hash(ledger.pepper, plaintext),
            created_at=now,
            expires_at=expires_at,
        )
        session.add(row)
        await session.flush()
        record = KeyRecord.model_validate(row, from_attributes=True)
    _log.info("Created API key id=%s tenant=%s prefix=%s", record.id, owner.name, record.prefix)
    return CreatedKey(key=record, plaintext=plaintext)


async def list_keys(ledger: Ledger, tenant: str) -> list[KeyRecord]:
    async with ledger.sessions() as session:
        owner = await find_tenant(session, tenant)
        query = select(ApiKey).where(ApiKey.tenant_id == owner.id).order_by(ApiKey.created_at)
        return [
            KeyRecord.model_validate(row, from_attributes=True)
            for row in (await session.execute(query)).scalars()
        ]


async def _find_key(session: AsyncSession, pepper: bytes, ref: str) -> ApiKey:
    """A key by id, or by its plaintext (hashed first: the plaintext is never compared as stored, nor
    sent to the database at all: drivers log their parameters at DEBUG, found by the secrets canary)."""
    clause = ApiKey.key_hash == key_hash(pepper, ref) if looks_like_key(ref) else ApiKey.id == ref
    row = (await session.execute(select(ApiKey).where(clause))).scalar_one_or_none()
    if row is None:
        raise NotFound("no such API key (give its id, e.g. key_0123abcd...)", param="key")
    return row


async def revoke_key(ledger: Ledger, ref: str) -> KeyRecord:
    """Revoke a key; revoking twice keeps the first revocation time."""
    async with ledger.transaction() as session:
        row = await _find_key(session, ledger.pepper, ref)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        record = KeyRecord.model_validate(row, from_attributes=True)
    _log.info("Revoked API key id=%s prefix=%s", record.id, record.prefix)
    return record
