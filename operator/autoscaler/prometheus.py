"""The autoscaler's signals read from a Prometheus that already scrapes the engines and gateways,
instead of their /metrics pages (`MODELPLEX_AUTOSCALER_PROMETHEUS_URL`).

The targets are the same as a scrape's (each ready serving pod, each ready gateway endpoint) and are
found in Prometheus by its `instance` label, the `host:port` it scraped (Kubernetes discovery and
static configs set it so unless a relabelling changes it). Two instant queries per model, with
`lookback_delta` = `prometheus_max_age_seconds`, so a series older than that is absent. A target is
unreadable — reported, never read as 0 — when Prometheus has no `up` for it within that age
(not scraped, or the scrape is stale), when its last scrape failed (`up` 0), when an engine has no
`vllm:num_requests_waiting`/`running`, or when a gateway has no `modelplex_gateway_limits_degraded`
(the unlabelled series every gateway exposes from its start: the sign that the target is one).
Prometheus unreachable or refusing the query makes every target unreadable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from modelplex.operator.autoscaler.signals import (
    ANSWERED,
    IN_FLIGHT,
    KV_CACHE,
    QUEUED,
    RUNNING,
    WAITING,
    Exposed,
    UnreadableMetrics,
)
from modelplex.prometheus_api import PrometheusClient, PrometheusError, Sample, exact_alternatives

UP = "up"
GATEWAY_MARK = "modelplex_gateway_limits_degraded"
ENGINE_SERIES = (WAITING, RUNNING, KV_CACHE)
GATEWAY_SERIES = (QUEUED, IN_FLIGHT, ANSWERED, GATEWAY_MARK)


def instance_of(url: str) -> str:
    """The `instance` label Prometheus gives the target scraped at `url` (its host:port)."""
    parts = urlsplit(url)
    if parts.port is not None:
        return parts.netloc.rpartition("@")[2]
    return f"{parts.hostname}:{443 if parts.scheme == 'https' else 80}"


def targets_query(names: Iterable[str], urls: Iterable[str]) -> str:
    """Every series named `names` (and `up`) of the targets scraped at `urls`."""
    instances = sorted({instance_of(url) for url in urls})
    return f"{{__name__=~{exact_alternatives([UP, *names])}, instance=~{exact_alternatives(instances)}}}"


def exposed_targets(
    samples: Iterable[Sample], urls: Iterable[str], max_age_seconds: float
) -> dict[str, Exposed | BaseException]:
    """Each URL's series as Prometheus last scraped them, or why they cannot be read (pure). A
    Modelplex gateway's families count as declared when its marker series is there."""
    by_instance: dict[str, list[Sample]] = {}
    for sample in samples:
        by_instance.setdefault(sample.labels.get("instance", ""), []).append(sample)
    found: dict[str, Exposed | BaseException] = {}
    for url in urls:
        series = by_instance.get(instance_of(url), [])
        up = [s.value for s in series if s.labels.get("__name__") == UP]
        if not up:
            found[url] = UnreadableMetrics(
                f"Prometheus has no scrape of {instance_of(url)} in the last {max_age_seconds:g} s"
            )
        elif min(up) != 1:
            found[url] = UnreadableMetrics(f"Prometheus' last scrape of {instance_of(url)} failed (up 0)")
        else:
            named = tuple(
                (s.labels["__name__"], s.labels, s.value) for s in series if s.labels.get("__name__") != UP
            )
            declared = {name for name, _, _ in named}
            if GATEWAY_MARK in declared:
                declared |= {QUEUED, IN_FLIGHT, ANSWERED}
            found[url] = Exposed(frozenset(declared), named)
    return found


class PrometheusSource:
    """The pages of engines and gateways, read from Prometheus instead of fetched."""

    def __init__(self, url: str, timeout_seconds: float, max_age_seconds: float) -> None:
        self.client = PrometheusClient(url, timeout_seconds)
        self.max_age_seconds = max_age_seconds

    async def close(self) -> None:
        await self.client.close()

    async def pages(
        self, engines: list[str], gateways: list[str]
    ) -> Mapping[str, str | Exposed | BaseException]:
        """Each engine's and gateway's series, or why they could not be read."""
        groups = [
            (names, urls) for names, urls in ((ENGINE_SERIES, engines), (GATEWAY_SERIES, gateways)) if urls
        ]
        answers = await asyncio.gather(
            *(
                self.client.query(targets_query(names, urls), lookback_seconds=self.max_age_seconds)
                for names, urls in groups
            ),
            return_exceptions=True,
        )
        pages: dict[str, str | Exposed | BaseException] = {}
        for (_, urls), answer in zip(groups, answers, strict=True):
            if isinstance(answer, PrometheusError):
                pages.update(dict.fromkeys(urls, answer))
            elif isinstance(answer, BaseException):
                raise answer
            else:
                pages.update(exposed_targets(answer, urls, self.max_age_seconds))
        return pages
