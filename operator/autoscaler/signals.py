"""A model's load, read from the Prometheus text its engines and gateways serve at /metrics (pure).

Engines (vLLM): `vllm:num_requests_waiting`, `vllm:num_requests_running`, `vllm:kv_cache_usage_perc`.
Gateways (ours): `modelplex_gateway_queue_depth{model}` (held for a free replica, or for a replica
at all while the model is at zero), `modelplex_gateway_in_flight{model,replica}` and the answered
requests `modelplex_gateway_requests_total{model}` (their growth between two readings is the
arrivals). A page that cannot be fetched or parsed makes the whole reading unreadable: a missing
replica's load is unknown, not zero.

The same series may come from a Prometheus that scraped these pages (`prometheus.py`): each target
is then an `Exposed` (its samples, already parsed), read by the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from modelplex.operator.autoscaler.policy import Signals

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_CACHE = "vllm:kv_cache_usage_perc"
QUEUED = "modelplex_gateway_queue_depth"
IN_FLIGHT = "modelplex_gateway_in_flight"
ANSWERED = "modelplex_gateway_requests_total"
Parsed = TypeVar("Parsed")


class UnreadableMetrics(ValueError):
    """A /metrics page that is not Prometheus text."""


@dataclass(frozen=True)
class EngineReading:
    waiting: float
    running: float
    kv_cache: float | None


@dataclass(frozen=True)
class GatewayReading:
    queued: float
    in_flight: float
    answered: float  # cumulative: requests answered since the gateway started


@dataclass(frozen=True)
class Exposed:
    """What one target exposes: the metric families it declares and its samples (name, labels,
    value)."""

    declared: frozenset[str]
    samples: tuple[tuple[str, Mapping[str, str], float], ...]


def exposed(page: str | Exposed) -> Exposed:
    """A page's families and samples (a page already read is returned as it is)."""
    if isinstance(page, Exposed):
        return page
    try:
        families = list(text_string_to_metric_families(page))
    except (ValueError, TypeError, IndexError) as error:
        raise UnreadableMetrics(str(error)) from None
    samples = tuple((s.name, s.labels, s.value) for family in families for s in family.samples)
    return Exposed(frozenset(family.name for family in families), samples)


def engine_reading(page: str | Exposed) -> EngineReading:
    """One engine process's load (its only model: one vLLM serves one model)."""
    totals: dict[str, float] = {}
    for name, _, value in exposed(page).samples:
        if name in (WAITING, RUNNING, KV_CACHE):
            totals[name] = totals.get(name, 0.0) + value
    if WAITING not in totals or RUNNING not in totals:
        raise UnreadableMetrics(f"no {WAITING} or {RUNNING}: is this a vLLM /metrics page?")
    return EngineReading(totals[WAITING], totals[RUNNING], totals.get(KV_CACHE))


def gateway_reading(page: str | Exposed, model: str) -> GatewayReading:
    """What one gateway holds and has in flight for `model` (the name tenants send)."""
    declared, samples = (found := exposed(page)).declared, found.samples
    if QUEUED not in declared:
        raise UnreadableMetrics(f"no {QUEUED}: is this a Modelplex gateway's /metrics page?")
    queued = in_flight = answered = 0.0
    for name, labels, value in samples:
        if labels.get("model") != model:
            continue
        if name == QUEUED:
            queued += value
        elif name == IN_FLIGHT:
            in_flight += value
        elif name == ANSWERED:
            answered += value
    return GatewayReading(queued, in_flight, answered)


def combine(
    engines: Iterable[EngineReading],
    gateways: Mapping[str, GatewayReading],
    answered_before: Mapping[str, float],
    unreadable: Iterable[str] = (),
) -> Signals:
    """One `Signals` from every engine and gateway of a model; `answered_before` is each gateway's
    answered count at the previous reading (a gateway seen for the first time brings no arrivals,
    a restarted one counts from zero)."""
    engine_list = list(engines)
    kv_values = [e.kv_cache for e in engine_list if e.kv_cache is not None]
    arrivals = 0.0
    for gateway, reading in gateways.items():
        before = answered_before.get(gateway)
        if before is not None:
            arrivals += reading.answered - before if reading.answered >= before else reading.answered
    return Signals(
        waiting=round(sum(e.waiting for e in engine_list)),
        running=round(sum(e.running for e in engine_list)),
        kv_cache=sum(kv_values) / len(kv_values) if kv_values else None,
        gateway_queued=round(sum(g.queued for g in gateways.values())),
        gateway_in_flight=round(sum(g.in_flight for g in gateways.values())),
        arrivals=round(arrivals),
        unreadable=tuple(unreadable),
    )


@dataclass(frozen=True)
class Reading:
    signals: Signals
    answered: dict[str, float]  # per gateway: pass as `answered_before` next time


def read_pages(
    pages: Mapping[str, str | Exposed | BaseException],
    engines: Sequence[str],
    gateways: Sequence[str],
    model: str,
    answered_before: Mapping[str, float],
) -> Reading:
    """The model's signals from the fetched pages (a page is its text or its series, or why it could
    not be had)."""
    unreadable: list[str] = []
    if not engines and not gateways:
        # Nothing serves the model and no gateway holds its requests: its load is unknown, not zero.
        unreadable.append("no ready engine and no gateway to read")
    engine_readings = [r for url in engines if (r := _page(pages[url], engine_reading, url, unreadable))]
    gateway_readings: dict[str, GatewayReading] = {}
    for url in gateways:
        if (
            found := _page(pages[url], lambda text: gateway_reading(text, model), url, unreadable)
        ) is not None:
            gateway_readings[url] = found
    signals = combine(engine_readings, gateway_readings, answered_before, unreadable)
    return Reading(signals, {url: reading.answered for url, reading in gateway_readings.items()})


def _page(
    page: str | Exposed | BaseException,
    parse: Callable[[str | Exposed], Parsed],
    url: str,
    unreadable: list[str],
) -> Parsed | None:
    """The parsed page, or None with the reason added to `unreadable`."""
    try:
        if isinstance(page, BaseException):
            raise UnreadableMetrics(f"{type(page).__name__}: {page}")
        return parse(page)
    except UnreadableMetrics as error:
        unreadable.append(f"{url} ({error})"[:200])
        return None
