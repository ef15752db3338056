"""Settings, database URLs, periods, the TTL cache, key material, usage folding."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelplex.billing.cache import TtlCache
from modelplex.billing.db import async_url
from modelplex.billing.errors import InvalidInput
from modelplex.billing.key_material import display_prefix, key_hash, load_pepper, looks_like_key, new_key
from modelplex.billing.periods import parse_instant, parse_period
from modelplex.billing.settings import BillingSettings
from modelplex.billing.usage import UsageBucket, fold


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELPLEX_DATABASE_URL", "postgresql://db/ledger")
    monkeypatch.setenv("MODELPLEX_BILLING_AUTH_CACHE_SECONDS", "2.5")
    monkeypatch.setenv("MODELPLEX_BILLING_STATE_DIR", str(tmp_path))
    settings = BillingSettings()
    assert settings.resolved_database_url() == "postgresql://db/ledger"
    assert settings.auth_cache_seconds == 2.5
    monkeypatch.delenv("MODELPLEX_DATABASE_URL")
    assert BillingSettings().resolved_database_url() == f"sqlite:///{tmp_path / 'ledger.db'}"


def test_database_urls_get_async_drivers() -> None:
    assert async_url("sqlite:////tmp/x.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgresql+psycopg://u@h/db").drivername == "postgresql+asyncpg"
    for bad in ("mysql://u@h/db", "not a url"):
        with pytest.raises(InvalidInput) as error:
            async_url(bad)
        assert error.value.param == "MODELPLEX_DATABASE_URL"


def test_periods_are_utc_calendar_months() -> None:
    december = parse_period("2025-12")
    assert (december.start, december.end) == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    for bad in ("2025-00", "2025-1", "25-01", "2025/01", ""):
        with pytest.raises(InvalidInput):
            parse_period(bad)
    assert parse_instant("2026-03-01", param="start") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_instant("2026-03-01T02:00+02:00", param="start") == datetime(2026, 3, 1, tzinfo=UTC)


def test_ttl_cache_expires_and_evicts_the_oldest() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(5, max_entries=2, clock=lambda: now[0])
    cache.put("a", 1)
    assert cache.get("a") == (True, 1)
    now[0] = 5.0
    assert cache.get("a") == (False, None)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") == (False, None)
    assert cache.get("c") == (True, 3)
    disabled: TtlCache[str, int] = TtlCache(0)
    disabled.put("a", 1)
    assert disabled.get("a") == (False, None)


def test_key_material() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(looks_like_key(key) and len(key) == 47 for key in keys)
    key = next(iter(keys))
    assert display_prefix(key) == key[:12]
    assert key_hash(b"pepper", key) == hmac.new(b"pepper", key.encode(), hashlib.sha256).hexdigest()
    assert key_hash(b"pepper", key) != key_hash(b"other", key)
    assert not looks_like_key("mpx-short")
    assert not looks_like_key("sk-" + "x" * 40)


def test_local_pepper_is_created_once_and_private(tmp_path: Path) -> None:
    settings = BillingSettings(state_dir=tmp_path, key_pepper=None)
    first = load_pepper(settings)
    assert load_pepper(settings) == first
    assert len(first) >= 32
    assert (tmp_path / "key-pepper").stat().st_mode & 0o777 == 0o600
    assert load_pepper(BillingSettings(state_dir=tmp_path, key_pepper="set")) == b"set"


def test_fold_merges_hours_into_days_and_totals() -> None:
    def bucket(day: int, hour: int, tokens: int) -> UsageBucket:
        return UsageBucket(
            bucket=datetime(2026, 3, day, hour, tzinfo=UTC),
            tenant="a",
            model="m",
            requests=1,
            aborted=0,
            failed=0,
            prompt_tokens=tokens,
            cached_tokens=0,
            completion_tokens=0,
        )

    hours = [bucket(2, 1, 5), bucket(1, 3, 1), bucket(1, 9, 2)]
    assert [(b.bucket.day, b.prompt_tokens) for b in fold(hours, "day") if b.bucket] == [(1, 3), (2, 5)]
    assert [(b.bucket, b.requests, b.prompt_tokens) for b in fold(hours, "total")] == [(None, 3, 8)]
    assert [b.prompt_tokens for b in fold(hours, "hour")] == [1, 2, 5]
