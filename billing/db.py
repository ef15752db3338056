"""Database URLs and engines: one async engine per process, SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from modelplex.billing.errors import InvalidInput

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_PARAM = "MODELPLEX_DATABASE_URL"


def async_url(url: str) -> URL:
    """`url` with the ledger's async driver (aiosqlite or asyncpg), whatever driver it named."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(f"{url!r} is not a database URL", param=_PARAM) from None
    backend = (  # "postgres://" is an old spelling of "postgresql://"
        "postgresql" if parsed.get_backend_name() in {"postgres", "postgresql"} else parsed.get_backend_name()
    )
    if backend not in _ASYNC_DRIVERS:
        raise InvalidInput(f"the ledger supports sqlite and postgresql, not {backend!r}", param=_PARAM)
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by _sqlite_begin below, not implicitly by the driver.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the gateway write while the CLI reads; busy_timeout waits out the other writer.
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes
    # fails at once with SQLITE_BUSY when another connection wrote meanwhile, with no waiting.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; a SQLite file's folder is created when missing."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        if target.database and target.database != ":memory:":
            Path(target.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(target)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(target, pool_size=5, max_overflow=5, pool_pre_ping=True)
