"""Background care of replicas: probe ejected ones back in, scrape every replica's engine load."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from modelplex.gateway.pool import Pool, Replica
from modelplex.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

LOAD_METRICS = {
    "vllm:num_requests_waiting": "waiting",
    "vllm:num_requests_running": "running",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
}


def probe_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The HTTP client of the probes and scrapes (requests go through `upstream.Upstream`)."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_seconds)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)


async def run_prober(pool: Pool, session: aiohttp.ClientSession, interval: float) -> None:
    """An ejected replica is re-admitted after one successful `GET /health`."""
    while True:
        await asyncio.sleep(interval)
        ejected = [r for r in pool.replicas() if r.ejected]
        if ejected:
            results = await asyncio.gather(*(_healthy(session, r, interval) for r in ejected))
            for replica, ok in zip(ejected, results, strict=True):
                if ok:
                    pool.readmit(replica)


async def _healthy(session: aiohttp.ClientSession, replica: Replica, seconds: float) -> bool:
    try:
        async with session.get(
            replica.endpoint.url + "/health", timeout=aiohttp.ClientTimeout(total=seconds)
        ) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def run_scraper(pool: Pool, session: aiohttp.ClientSession, interval: float) -> None:
    """Reads the engines' queue and KV-cache gauges that least-load and bounded load route on."""
    while True:
        replicas = [r for r in pool.replicas() if not r.ejected]
        await asyncio.gather(*(_scrape(session, r, interval) for r in replicas))
        await asyncio.sleep(interval)


async def _scrape(session: aiohttp.ClientSession, replica: Replica, seconds: float) -> None:
    try:
        async with session.get(
            replica.endpoint.url + "/metrics", timeout=aiohttp.ClientTimeout(total=seconds)
        ) as response:
            if response.status != 200:
                return
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return
    values = parse_load(text)
    replica.others = other_gateways_requests(values, replica.in_flight)
    replica.kv_cache_usage = values.get("kv_cache_usage", 0.0)


def other_gateways_requests(load: dict[str, float], in_flight: int) -> int:
    """The requests an engine holds (`parse_load`'s waiting + running) that are not this gateway's
    `in_flight` ones, counted when its page arrived (near enough the moment the engine wrote it)."""
    return max(0, int(load.get("waiting", 0)) + int(load.get("running", 0)) - in_flight)


def parse_load(text: str) -> dict[str, float]:
    """Sums each load gauge over its label sets (one engine may serve under several model names)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        field = LOAD_METRICS.get(name)
        if field is None:
            continue
        rest = line.rsplit("}", 1)[1] if "}" in line else line[len(name) :]
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            continue
        totals[field] = totals.get(field, 0.0) + value
    return totals
