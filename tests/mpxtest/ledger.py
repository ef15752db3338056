"""The real ledger: every test that takes `ledger_url`, `billing_settings` or `ledger` runs on SQLite and
on PostgreSQL; usage events as the gateway meters them; a clock the test moves."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from modelplex.billing import migrate
from modelplex.billing.api import build_admin_app
from modelplex.billing.authority import LedgerKeyAuthority
from modelplex.billing.contracts import Outcome, UsageEvent
from modelplex.billing.db import create_engine
from modelplex.billing.ledger import Ledger
from modelplex.billing.settings import BillingSettings
from modelplex.billing.tables import Base
from mpxtest import canary
from mpxtest.postgres import EmbeddedPostgres

PEPPER = "test-pepper"
ADMIN_TOKEN = "test-admin-token"
canary.register(PEPPER, "the test pepper")
canary.register(ADMIN_TOKEN, "the test admin token")


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.db"
    asyncio.run(_migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_ledger(postgres: EmbeddedPostgres) -> str:
    url = postgres.create_database("ledger")
    asyncio.run(_migrate(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated ledger database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        canary.watch(path, "a SQLite ledger")
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_ledger")
    asyncio.run(_truncate(url))
    yield url


@pytest.fixture
def billing_settings(ledger_url: str, tmp_path: Path) -> BillingSettings:
    return BillingSettings(
        database_url=ledger_url,
        state_dir=tmp_path / "state",
        key_pepper=PEPPER,
        admin_token=ADMIN_TOKEN,
        auto_migrate=False,
    )


@pytest.fixture
async def ledger(billing_settings: BillingSettings) -> AsyncIterator[Ledger]:
    opened = await Ledger.connect(billing_settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def authority(ledger: Ledger) -> LedgerKeyAuthority:
    return LedgerKeyAuthority(ledger)


@pytest.fixture
async def admin(ledger: Ledger, authority: LedgerKeyAuthority) -> AsyncIterator[httpx.AsyncClient]:
    """The admin API over `ledger`, called in-process with the admin token."""
    app = build_admin_app(ledger, on_change=authority.forget)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger", headers=headers) as client:
        yield client


def usage_event(
    request_id: str,
    *,
    tenant_id: str = "tnt_a",
    model: str = "m1",
    at: datetime = datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
    prompt: int = 1000,
    cached: int = 0,
    completion: int = 500,
    outcome: Outcome = Outcome.COMPLETED,
) -> UsageEvent:
    """A usage event as the gateway meters it."""
    return UsageEvent(
        request_id=request_id,
        tenant_id=tenant_id,
        key_id="key_a",
        model=model,
        deployment="default/" + model,
        replica=model + "-0",
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        outcome=outcome,
        started_at=at,
        finished_at=at + timedelta(seconds=2),
        ttft_ms=120.0,
        duration_ms=2000.0,
    )


class Clock:
    """A monotonic clock that moves only when the test sets `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
