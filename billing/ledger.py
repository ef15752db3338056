"""The ledger handle: settings, one async engine, sessions. Services take it as their first argument."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from modelplex.billing import migrate
from modelplex.billing.db import create_engine
from modelplex.billing.key_material import load_pepper
from modelplex.billing.settings import BillingSettings

_log = logging.getLogger(__name__)


class Ledger:
    """Owns the engine. Open with `Ledger.connect`, close with `close` (or use `opened`)."""

    def __init__(self, engine: AsyncEngine, settings: BillingSettings, pepper: bytes) -> None:
        self.engine = engine
        self.settings = settings
        self.pepper = pepper
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @classmethod
    async def connect(cls, settings: BillingSettings) -> Ledger:
        """Open the configured database, migrating it first when `auto_migrate` is on."""
        engine = create_engine(settings.resolved_database_url())
        try:
            if settings.auto_migrate:
                await migrate.upgrade(engine)
            return cls(engine, settings, load_pepper(settings))
        except BaseException:
            await engine.dispose()
            raise

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session


@asynccontextmanager
async def opened(settings: BillingSettings) -> AsyncIterator[Ledger]:
    ledger = await Ledger.connect(settings)
    try:
        yield ledger
    finally:
        await ledger.close()
