"""The autoscaler's settings, shared by both runtimes (the operator and `modelplex up`): read once from
MODELPLEX_AUTOSCALER_* at start, then passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelplex.operator.autoscaler.policy import PolicySettings


class AutoscalerSettings(BaseSettings):
    """Environment: `MODELPLEX_AUTOSCALER_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="MODELPLEX_AUTOSCALER_", frozen=True, extra="forbid")

    enabled: bool = True
    interval_seconds: float = Field(default=2.0, gt=0)  # one reading and decision per model
    scrape_timeout_seconds: float = Field(default=1.5, gt=0)
    stable_window_seconds: float = Field(default=60.0, gt=0)
    panic_window_seconds: float = Field(default=6.0, gt=0)
    scale_down_window_seconds: float = Field(default=300.0, ge=0)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    # Read the signals from this Prometheus (its base URL, e.g. http://prometheus.monitoring:9090)
    # instead of scraping every engine and gateway; unset: scrape them.
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+")
    # With prometheus_url: a target whose newest sample in Prometheus is older than this is
    # unreadable (keep it above Prometheus' scrape interval).
    prometheus_max_age_seconds: float = Field(default=60.0, gt=0)

    def policy(self) -> PolicySettings:
        return PolicySettings(
            stable_window_seconds=self.stable_window_seconds,
            panic_window_seconds=self.panic_window_seconds,
            scale_down_window_seconds=self.scale_down_window_seconds,
            tolerance=self.tolerance,
        )
