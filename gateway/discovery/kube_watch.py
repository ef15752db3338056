"""A minimal Kubernetes list + watch client (aiohttp): keeps one collection of objects current.

The gateway has its own (it must not import the operator) and needs only reads: list a collection
(paged), then watch from the list's resourceVersion with bookmarks; a watch that ends is resumed from
the last version seen; `410 Gone` (the version left the API server's window) re-lists, which also
drops whatever was deleted in between; any other failure backs off exponentially and re-lists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from modelplex.kube.credentials import KubeCredentials, authorization

log = logging.getLogger(__name__)

Body = dict[str, Any]
WATCH_SECONDS = 290  # the API server ends each watch after this; it is then resumed
LIST_PAGE = 500


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Gone(Exception):
    """The resourceVersion is too old to watch from: list again."""


class KubeClient:
    """GET requests and watch streams over one pooled HTTPS session."""

    def __init__(self, credentials: KubeCredentials, request_seconds: float = 30.0) -> None:
        self._credentials = credentials
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=credentials.ssl_context(), limit=8),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=request_seconds),
        )
        self._request_seconds = request_seconds

    async def close(self) -> None:
        await self._session.close()

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"Accept": "application/json", **authorization(token)}

    async def _check(self, status: int, body: Any, token: str | None) -> None:
        if status == 401:  # an expired or rotated token: the retry after the backoff uses a new one
            await asyncio.to_thread(self._credentials.renew, token)
        _raise_for_status(status, body)

    async def get(self, path: str, params: dict[str, str]) -> Body:
        timeout = aiohttp.ClientTimeout(total=self._request_seconds)
        token = self._credentials.bearer()
        async with self._session.get(
            self._credentials.url(path), params=params, headers=self._headers(token), timeout=timeout
        ) as reply:
            body = await reply.json(content_type=None)
            await self._check(reply.status, body, token)
            return body if isinstance(body, dict) else {}

    async def watch(self, path: str, params: dict[str, str]) -> AsyncIterator[Body]:
        """The events of one watch request, until the server ends it."""
        # A silent connection is dead once the server's own watch timeout has long passed.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=WATCH_SECONDS + 60)
        token = self._credentials.bearer()
        async with self._session.get(
            self._credentials.url(path), params=params, headers=self._headers(token), timeout=timeout
        ) as reply:
            if reply.status >= 400:
                await self._check(reply.status, await reply.json(content_type=None), token)
            buffer = b""
            async for chunk in reply.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)


def _raise_for_status(status: int, body: Any) -> None:
    if status == 410:
        raise Gone()
    if status >= 400:
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        raise ApiError(status, message)


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
    ) -> None:
        self.objects: dict[str, Body] = {}
        self.synced = False  # listed at least once
        self._client = client
        self._path = path
        self._on_change = on_change
        self._selector = {"labelSelector": label_selector} if label_selector else {}
        self._backoff_max = backoff_max_seconds

    async def run(self) -> None:
        """List and watch until cancelled."""
        delay = 0.5
        while True:
            try:
                version = await self._list()
                delay = 0.5
                await self._watch_from(version)
            except (aiohttp.ClientError, OSError, ApiError, ValueError) as error:
                log.warning("Failed to watch path=%s error=%s retry_in=%.1f", self._path, error, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self._backoff_max)
            except Gone:
                log.info("Re-listed after an expired watch path=%s", self._path)

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
        while True:
            params = {
                **self._selector,
                "watch": "true",
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(WATCH_SECONDS),
                "resourceVersion": version,
            }
            async for event in self._client.watch(self._path, params):
                version = self._apply(event) or version

    def _apply(self, event: Body) -> str | None:
        """Apply one event; the resourceVersion it brings."""
        kind, body = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            _raise_for_status(int(body.get("code") or 500), body)
        version = (body.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self.objects[object_key(body)] = _trimmed(body)
            self._on_change()
        elif kind == "DELETED":
            self.objects.pop(object_key(body), None)
            self._on_change()
        return str(version) if version else None
