"""Where the autoscaler reads its signals: each target's /metrics (the default), or a Prometheus
that already scrapes them (`MODELPLEX_AUTOSCALER_PROMETHEUS_URL`). Both hand `signals.read_pages`
the same thing: per target, its series or why they could not be read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from modelplex.operator.autoscaler.prometheus import PrometheusSource
from modelplex.operator.autoscaler.scrape import ScrapeSource
from modelplex.operator.autoscaler.settings import AutoscalerSettings
from modelplex.operator.autoscaler.signals import Exposed


class SignalSource(Protocol):
    async def pages(
        self, engines: list[str], gateways: list[str]
    ) -> Mapping[str, str | Exposed | BaseException]: ...

    async def close(self) -> None: ...


def signal_source(settings: AutoscalerSettings, gateway_token: str | None = None) -> SignalSource:
    """The source `settings` ask for; a scrape sends `gateway_token` to the gateways (Prometheus
    holds its own credentials)."""
    if settings.prometheus_url is not None:
        return PrometheusSource(
            settings.prometheus_url, settings.scrape_timeout_seconds, settings.prometheus_max_age_seconds
        )
    return ScrapeSource(settings.scrape_timeout_seconds, gateway_token)
