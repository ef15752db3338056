"""A ledger database that goes away does not stop keys the gateway has already checked."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from modelplex.billing import keystore, tenants
from modelplex.billing.authority import LedgerKeyAuthority
from modelplex.billing.ledger import Ledger
from modelplex.billing.settings import BillingSettings
from mpxtest.ledger import PEPPER, Clock

pytestmark = pytest.mark.anyio


@pytest.fixture
def database(sqlite_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, copy)
    return copy


async def test_known_keys_and_budgets_are_served_from_the_last_answer_while_the_database_is_gone(
    database: Path, tmp_path: Path
) -> None:
    settings = BillingSettings(
        database_url=f"sqlite:///{database}",
        state_dir=tmp_path / "state",
        key_pepper=PEPPER,
        auto_migrate=False,
    )
    ledger = await Ledger.connect(settings)
    try:
        tenant = await tenants.create_tenant(ledger, "acme")
        known = await keystore.create_key(ledger, "acme")
        never_checked = await keystore.create_key(ledger, "acme")
        clock = Clock()
        authority = LedgerKeyAuthority(ledger, clock=clock, cache_entries=20)
        principal = await authority.authenticate(known.plaintext)
        assert principal is not None
        budget = await authority.budget(tenant.id)
        # A flood of made-up keys (well-formed, so each is looked up) fills only the cache of unknowns:
        # the last answer for the real key survives it.
        for guess in range(100):
            assert await authority.authenticate(f"mpx-{guess:043d}") is None

        await ledger.engine.dispose()
        # The next connection finds an empty new file: no tables, every query fails.
        await asyncio.to_thread(database.rename, tmp_path / "gone.db")
        clock.now += 60  # far past auth_cache_seconds

        assert await authority.authenticate(known.plaintext) == principal
        assert await authority.budget(tenant.id) == budget
        with pytest.raises(SQLAlchemyError):
            await authority.authenticate(never_checked.plaintext)
    finally:
        await ledger.close()
