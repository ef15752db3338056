"""Alembic migrations on both databases: up, down, up again; and the models match the migrations."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from modelplex.billing import migrate
from modelplex.billing.db import create_engine

pytestmark = pytest.mark.anyio
TABLES = {"plans", "tenants", "api_keys", "prices", "usage_events", "usage_hourly"}
TABLES |= {"gpu_costs", "replica_intervals", "replica_busy_hourly", "console_sessions", "usage_daily"}
TABLES |= {"usage_monthly", "scaling_decisions", "scaling_observations"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("empty_" + secrets.token_hex(4))
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    return names - {"alembic_version"}


async def test_upgrade_downgrade_upgrade(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)
    assert await _tables(empty_engine) == TABLES
    assert await migrate.current_revision(empty_engine) == migrate.head_revision()

    await migrate.downgrade(empty_engine, "base")
    assert await _tables(empty_engine) == set()
    assert await migrate.current_revision(empty_engine) is None

    await migrate.upgrade(empty_engine)
    assert await _tables(empty_engine) == TABLES


async def test_models_match_migrations(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)
    assert await migrate.schema_drift(empty_engine) == []


async def test_drift_is_detected_when_schema_lags(empty_engine: AsyncEngine) -> None:
    """The drift check can fail: at base, every table is reported missing."""
    await migrate.upgrade(empty_engine)
    await migrate.downgrade(empty_engine, "base")
    drift = await migrate.schema_drift(empty_engine)
    assert {entry[1].name for entry in drift if entry[0] == "add_table"} == TABLES  # type: ignore[index]


async def test_constraints_follow_the_naming_convention(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)

    def names(sync: object) -> tuple[str | None, list[str | None], list[str | None]]:
        inspector = inspect(sync)
        return (
            inspector.get_pk_constraint("api_keys")["name"],
            [fk["name"] for fk in inspector.get_foreign_keys("api_keys")],
            [uq["name"] for uq in inspector.get_unique_constraints("api_keys")],
        )

    async with empty_engine.connect() as connection:
        pk, fks, uqs = await connection.run_sync(names)
    assert fks == ["fk_api_keys_tenant_id_tenants"]
    assert uqs == ["uq_api_keys_key_hash"]
    if empty_engine.dialect.name == "postgresql":  # SQLite does not keep primary key names
        assert pk == "pk_api_keys"
