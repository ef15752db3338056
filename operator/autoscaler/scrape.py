"""Fetching /metrics pages of engines and gateways, concurrently, each within a short timeout.

The session honours the standard proxy variables (HTTP_PROXY, NO_PROXY): clusters whose pod
network is reachable only through a proxy can be scraped from outside, and the tests serve the
pages of kwok's fake pods through one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

import aiohttp


class Scraper:
    def __init__(self, timeout_seconds: float, connections: int = 32) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            trust_env=True,
        )

    async def close(self) -> None:
        await self._session.close()

    async def fetch(self, url: str, token: str | None = None) -> str:
        """The page's text (sent with `Authorization: Bearer <token>` when given); raises OSError,
        aiohttp.ClientError or TimeoutError."""
        headers = {"Accept": "text/plain"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self._session.get(url, headers=headers) as response:
            response.raise_for_status()
            return await response.text()

    async def fetch_all(
        self, urls: Iterable[str], tokens: Mapping[str, str] | None = None
    ) -> dict[str, str | BaseException]:
        """Each URL's text, or why it could not be read; `tokens` maps a URL to its bearer token."""
        wanted = list(dict.fromkeys(urls))
        tokens = tokens or {}
        fetches = (self.fetch(url, tokens.get(url)) for url in wanted)
        pages = await asyncio.gather(*fetches, return_exceptions=True)
        return dict(zip(wanted, pages, strict=True))


class ScrapeSource:
    """The pages of engines and gateways, fetched from each (the default signal source); the
    gateways' pages with their bearer token when one is set."""

    def __init__(self, timeout_seconds: float, gateway_token: str | None = None) -> None:
        self.scraper = Scraper(timeout_seconds)
        self.gateway_token = gateway_token

    async def close(self) -> None:
        await self.scraper.close()

    async def pages(self, engines: list[str], gateways: list[str]) -> dict[str, str | BaseException]:
        tokens = dict.fromkeys(gateways, self.gateway_token) if self.gateway_token is not None else {}
        return await self.scraper.fetch_all([*engines, *gateways], tokens)
