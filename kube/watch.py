"""List + watch: keeps one collection of objects current (the gateway's discovery reads through it).

List the collection (paged), then watch from the list's resourceVersion with bookmarks; a watch
that ends is resumed from the last version seen (at once, unless it ended empty within a second:
then after a growing pause, so a server or proxy that closes every watch is not asked again in a
tight loop); `410 Gone` (the version left the API server's window, as a status or as an ERROR
event) lists again, which also drops whatever was deleted in between; any other failure backs off
exponentially, with jitter, and lists again. A 401 is renewed and retried by the client itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from modelplex.kube.client import WATCH_SECONDS, Body, KubeClient
from modelplex.kube.errors import ApiError, Gone, api_error

log = logging.getLogger(__name__)

LIST_PAGE = 500
QUICK_END_SECONDS = 1.0  # a watch that ends empty sooner than this is paused before the next


def object_key(body: Body) -> str:
    metadata = body.get("metadata") or {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


def _trimmed(body: Body) -> Body:
    """The object without managedFields, which can be most of its size and is never read here."""
    metadata = body.get("metadata") or {}
    return {**body, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}


class WatchedCollection:
    """`objects` (namespace/name -> body) of one collection, with `on_change()` after every change."""

    def __init__(
        self,
        client: KubeClient,
        path: str,
        on_change: Callable[[], None],
        label_selector: str | None = None,
        backoff_max_seconds: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.objects: dict[str, Body] = {}
        self.synced = False  # listed at least once
        self._client = client
        self._path = path
        self._on_change = on_change
        self._selector = {"labelSelector": label_selector} if label_selector else {}
        self._backoff_max = backoff_max_seconds
        self._sleep = sleep

    async def run(self) -> None:
        """List and watch until cancelled."""
        delay = 0.5
        while True:
            try:
                version = await self._list()
                delay = 0.5
                await self._watch_from(version)
            except Gone:
                log.info("Re-listed after an expired watch path=%s", self._path)
            except (aiohttp.ClientError, OSError, ApiError, ValueError) as error:
                log.warning("Failed to watch path=%s error=%s retry_in=%.1f", self._path, error, delay)
                await self._sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self._backoff_max)

    async def _list(self) -> str:
        objects: dict[str, Body] = {}
        params = {**self._selector, "limit": str(LIST_PAGE)}
        while True:
            page = await self._client.get(self._path, params)
            for item in page.get("items") or []:
                objects[object_key(item)] = _trimmed(item)
            metadata = page.get("metadata") or {}
            if not metadata.get("continue"):
                break
            params = {**params, "continue": metadata["continue"]}
        self.objects = objects
        self.synced = True
        self._on_change()
        return str(metadata.get("resourceVersion", ""))

    async def _watch_from(self, version: str) -> None:
        """Watch, resuming each time the server ends the stream; returns never, raises Gone or errors."""
        pause = 0.5
        while True:
            params = {
                **self._selector,
                "watch": "true",
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(WATCH_SECONDS),
                "resourceVersion": version,
            }
            began, events = time.monotonic(), 0
            async for event in self._client.watch(self._path, params):
                events += 1
                version = self._apply(event) or version
            if events or time.monotonic() - began >= QUICK_END_SECONDS:
                pause = 0.5
                continue
            log.warning("A watch ended at once path=%s resume_in=%.1f", self._path, pause)
            await self._sleep(pause * random.uniform(0.8, 1.2))
            pause = min(pause * 2, self._backoff_max)

    def _apply(self, event: dict[str, Any]) -> str | None:
        """Apply one event; the resourceVersion it brings."""
        kind, body = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise api_error(int(body.get("code") or 500), body)
        version = (body.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self.objects[object_key(body)] = _trimmed(body)
            self._on_change()
        elif kind == "DELETED":
            self.objects.pop(object_key(body), None)
            self._on_change()
        return str(version) if version else None
