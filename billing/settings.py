"""The ledger's settings: read once from the environment at start, then passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "modelplex"


class BillingSettings(BaseSettings):
    """`MODELPLEX_BILLING_*`, plus `MODELPLEX_DATABASE_URL` shared with the local stack."""

    model_config = SettingsConfigDict(
        env_prefix="MODELPLEX_BILLING_", frozen=True, extra="forbid", validate_by_name=True
    )

    state_dir: Path = Field(default_factory=_default_state_dir)
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MODELPLEX_DATABASE_URL", "database_url")
    )
    # HMAC key for API-key hashes. Unset: a random pepper kept in `state_dir/key-pepper` (local stack).
    key_pepper: SecretStr | None = None
    # Bearer token of the admin API. Unset: the admin API refuses every request.
    admin_token: SecretStr | None = None
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    auto_migrate: bool = True
    # Prometheus (its base URL) that scrapes the gateways and engines: the console's model page then
    # draws queue depth and KV cache use over time. Unset: the page shows the last reading only.
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+")
    prometheus_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    def resolved_database_url(self) -> str:
        """The configured URL, or the local stack's SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'ledger.db'}"
