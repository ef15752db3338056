"""Revisions 0002 to head upgrade a ledger that already holds data, on both databases: rollups, prices
and invoices are kept as they were, the new histogram columns start empty, 0004's daily rollups are
filled from the hourly rows already there, and 0005's monthly rollups from the daily rows."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelplex.billing import migrate, statements
from modelplex.billing.db import create_engine
from modelplex.billing.ledger import Ledger
from modelplex.billing.settings import BillingSettings
from modelplex.billing.tables import UsageDaily
from mpxtest.ledger import PEPPER

pytestmark = pytest.mark.anyio
HOUR = datetime(2026, 3, 10, 12, tzinfo=UTC)
MONTH = datetime(2026, 3, 1, tzinfo=UTC)


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


@pytest.fixture(params=["sqlite", "postgresql"])
async def old_ledger(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A ledger at revision 0001 with a tenant, a price and a rollup of usage."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("old_" + secrets.token_hex(4))
    engine = create_engine(url)
    await migrate.upgrade(engine, "0001")
    # raw SQL bypasses the UTC column type: SQLite keeps naive UTC, PostgreSQL takes aware instants
    hour, month = (HOUR, MONTH) if request.param == "postgresql" else (naive(HOUR), naive(MONTH))
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tenants (id, name, status, created_at) VALUES ('tnt_a', 'acme', 'active', :at)"
            ),
            {"at": hour},
        )
        await connection.execute(
            text(
                "INSERT INTO prices (model, currency, input_per_1m, cached_input_per_1m, output_per_1m,"
                " effective_from, source, created_at) VALUES ('m1', 'USD', 2, 1, 4, :month, 't', :at)"
            ),
            {"at": hour, "month": month},
        )
        await connection.execute(
            text(
                "INSERT INTO usage_hourly (tenant_id, model, price_id, hour, requests, aborted, failed,"
                " prompt_tokens, cached_tokens, completion_tokens)"
                " VALUES ('tnt_a', 'm1', 1, :at, 3, 0, 1, 3000, 0, 1500)"
            ),
            {"at": hour},
        )
    try:
        yield url, engine
    finally:
        await engine.dispose()


async def test_upgrade_keeps_existing_usage_and_invoices(
    old_ledger: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    url, engine = old_ledger
    settings = BillingSettings(database_url=url, state_dir=tmp_path, key_pepper=PEPPER, auto_migrate=False)
    await migrate.upgrade(engine)
    assert await migrate.current_revision(engine) == migrate.head_revision()
    assert await migrate.schema_drift(engine) == []
    after = Ledger(engine, settings, PEPPER.encode())
    invoice = await statements.build_invoice(after, "acme", "2026-03")
    assert invoice.totals == {"USD": Decimal("0.01")}  # 3000 x 2/1M + 1500 x 4/1M = 0.012
    assert [(line.requests, line.input_tokens, line.output_tokens) for line in invoice.lines] == [
        (3, 3000, 1500)
    ]
    async with after.sessions() as session:
        daily = (await session.execute(select(UsageDaily))).scalars().all()
    assert [(row.day, row.requests, row.failed, row.prompt_tokens) for row in daily] == [
        (datetime(2026, 3, 10, tzinfo=UTC), 3, 1, 3000)
    ]
    async with engine.connect() as connection:
        query = text("SELECT requests, ttft_le_50, duration_le_inf FROM usage_hourly")
        row = (await connection.execute(query)).one()
    assert tuple(row) == (3, 0, 0)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_0005_fills_the_monthly_rollups_from_the_daily_rows(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'daily.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("daily_" + secrets.token_hex(4))
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine, "0004")
        days = [datetime(2026, 3, day, tzinfo=UTC) for day in (1, 17, 31)] + [
            datetime(2026, 4, 1, tzinfo=UTC)
        ]
        async with engine.begin() as connection:
            for index, day in enumerate(days):
                for tenant in ("tnt_a", "tnt_b"):
                    await connection.execute(
                        text(
                            "INSERT INTO usage_daily (tenant_id, model, price_id, day, requests, aborted,"
                            " failed, prompt_tokens, cached_tokens, completion_tokens, ttft_le_250)"
                            " VALUES (:tenant, 'm1', 1, :day, :requests, 1, 2, :prompt, 5, 7, :requests)"
                        ),
                        {
                            "tenant": tenant,
                            "day": day if database == "postgresql" else naive(day),
                            "requests": 10 + index,
                            "prompt": 1000 * (index + 1),
                        },
                    )
        await migrate.upgrade(engine)
        assert await migrate.schema_drift(engine) == []
        async with engine.connect() as connection:
            query = text(
                "SELECT tenant_id, month, requests, aborted, failed, prompt_tokens, cached_tokens,"
                " completion_tokens, ttft_le_250, duration_le_inf FROM usage_monthly"
                " ORDER BY tenant_id, month"
            )
            rows = [tuple(row) for row in (await connection.execute(query)).all()]
    finally:
        await engine.dispose()
    march = ("2026-03-01", 10 + 11 + 12, 3, 6, 6000, 15, 21, 33, 0)
    april = ("2026-04-01", 13, 1, 2, 4000, 5, 7, 13, 0)
    assert [(tenant, str(month)[:10], *sums) for tenant, month, *sums in rows] == [
        ("tnt_a", *march),
        ("tnt_a", *april),
        ("tnt_b", *march),
        ("tnt_b", *april),
    ]
