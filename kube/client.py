"""The one Kubernetes transport: requests and watch streams over one pooled aiohttp session.

aiohttp because the operator and the gateway are asyncio programs already built on it (kopf
speaks aiohttp; the gateway proxies with it), and because a watch is a long chunked response read
line by line, which it streams without a thread per connection. The blocking dev-cluster bootstrap
drives it through its own event loop.

Every request goes through `_exchange`, the one place that answers a 401: the refused token is
renewed (an exec plugin runs again, a token file is read again; in a thread, as that may block) and
the request is sent once more. Requests refused together renew once, as the credentials skip a
renewal when the token already changed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import aiohttp

from modelplex.crds import labels
from modelplex.kube.credentials import KubeCredentials, authorization
from modelplex.kube.errors import ApiError, api_error
from modelplex.kube.resources import manifest_path, resource_path

Body = dict[str, Any]
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
WATCH_SECONDS = 290  # the API server ends each watch after this; the watcher then resumes


class KubeClient:
    """Requests to one API server; `timeout_seconds` bounds each request (watches: each read)."""

    def __init__(
        self, credentials: KubeCredentials, timeout_seconds: float = 30.0, connections: int = 32
    ) -> None:
        self.credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        # A silent watch is dead once the server's own watch timeout has long passed.
        self._watch_timeout = aiohttp.ClientTimeout(
            sock_connect=timeout_seconds, sock_read=WATCH_SECONDS + 60
        )
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=credentials.ssl_context(), limit=connections),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_seconds),
        )

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        data: str | None = None,
        params: dict[str, str] | None = None,
        content_type: str = JSON,
        streaming: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response to one request, after one renewal and retry on 401; ApiError from 400 on."""
        url = self.credentials.url(path)
        headers = {"Accept": JSON, **({"Content-Type": content_type} if data is not None else {})}
        timeout = self._watch_timeout if streaming else self._timeout
        options: dict[str, Any] = {"data": data, "params": params, "timeout": timeout}
        token = self.credentials.bearer()
        async with self._session.request(
            method, url, headers={**headers, **authorization(token)}, **options
        ) as response:
            if response.status != 401:
                await _raise_for_status(response)
                yield response
                return
        await asyncio.to_thread(self.credentials.renew, token)  # expired or rotated
        retry_headers = {**headers, **authorization(self.credentials.bearer())}
        async with self._session.request(method, url, headers=retry_headers, **options) as response:
            await _raise_for_status(response)
            yield response

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = JSON,
    ) -> Body:
        """One request; the object answered ({} for an answer that is not a JSON object)."""
        data = json.dumps(body) if body is not None else None
        async with self._exchange(method, path, data=data, params=params, content_type=content_type) as reply:
            if reply.content_type != JSON:
                return {}  # e.g. /readyz answers "ok" in plain text
            payload = json.loads(await reply.read() or b"{}")
        return payload if isinstance(payload, dict) else {}

    async def watch(self, path: str, params: dict[str, str]) -> AsyncIterator[Body]:
        """The events of one watch request (`params` include watch=true), until the server ends it."""
        async with self._exchange("GET", path, params=params, streaming=True) as reply:
            buffer = b""
            async for chunk in reply.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        event: Body = json.loads(line)
                        yield event

    async def get(self, path: str, params: dict[str, str] | None = None) -> Body:
        return await self.request("GET", path, params=params)

    async def apply(self, manifest: Body, field_manager: str, subresource: str | None = None) -> Body:
        """Server-side apply under `field_manager`, taking over fields other managers own."""
        params = {"fieldManager": field_manager, "force": "true"}
        path = manifest_path(manifest, subresource)
        return await self.request("PATCH", path, body=manifest, params=params, content_type=APPLY_PATCH)

    async def create(self, manifest: Body) -> Body:
        return await self.request("POST", manifest_path(manifest, named=False), body=manifest)

    async def patch(self, path: str, patch: Body, content_type: str = MERGE_PATCH) -> Body:
        return await self.request("PATCH", path, body=patch, content_type=content_type)

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        """Deletes in the background (the garbage collector removes dependents); gone already is fine."""
        path = resource_path(api_version, kind, namespace, name)
        try:
            await self.request("DELETE", path, body={"propagationPolicy": "Background"})
        except ApiError as error:
            if error.status != 404:
                raise

    async def patch_status(self, namespace: str, name: str, status: Body) -> Body:
        """Merge-patches the status subresource of ModelDeployment `name`."""
        path = resource_path(labels.API_VERSION, labels.KIND, namespace, name, "status")
        return await self.patch(path, {"status": status})

    async def patch_scale(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        replicas: int,
        field_manager: str | None = None,
    ) -> Body:
        """Writes spec.replicas through the scale subresource, like `kubectl scale`."""
        path = resource_path(api_version, kind, namespace, name, "scale")
        params = {"fieldManager": field_manager} if field_manager else None
        body = {"spec": {"replicas": replicas}}
        return await self.request("PATCH", path, body=body, params=params, content_type=MERGE_PATCH)


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    raw = await response.read()
    try:
        body: Any = json.loads(raw) if response.content_type == JSON else raw.decode(errors="replace")
    except ValueError:
        body = raw.decode(errors="replace")
    raise api_error(response.status, body)
