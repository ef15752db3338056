"""Fetching /metrics pages of engines and gateways, concurrently, each within a short timeout.

The session honours the standard proxy variables (HTTP_PROXY, NO_PROXY): clusters whose pod
network is reachable only through a proxy can be scraped from outside, and the tests serve the
pages of kwok's fake pods through one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

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

    async def fetch(self, url: str) -> str:
        """The page's text; raises OSError, aiohttp.ClientError or TimeoutError."""
        async with self._session.get(url, headers={"Accept": "text/plain"}) as response:
            response.raise_for_status()
            return await response.text()

    async def fetch_all(self, urls: Iterable[str]) -> dict[str, str | BaseException]:
        """Each URL's text, or why it could not be read."""
        wanted = list(dict.fromkeys(urls))
        pages = await asyncio.gather(*(self.fetch(url) for url in wanted), return_exceptions=True)
        return dict(zip(wanted, pages, strict=True))
