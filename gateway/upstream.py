"""Calls to one engine replica. Any failure before the first byte is an `AttemptFailed` (retryable)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from modelplex.gateway.inference import InferenceRequest
from modelplex.gateway.settings import GatewaySettings

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class AttemptFailed(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # connect, timeout, status, empty


@dataclass(slots=True)
class Answer:
    """An upstream response that has produced its first bytes: a whole body, or a stream to read on."""

    status: int
    content_type: str
    body: bytes  # the whole body; for a stream, the first chunk
    stream: aiohttp.ClientResponse | None = None


def make_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_seconds)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)


async def call(
    session: aiohttp.ClientSession,
    base_url: str,
    request: InferenceRequest,
    request_id: str,
    first_byte_timeout: float,
) -> Answer:
    """Send the request; return once the first bytes of a non-5xx answer are in.

    vLLM takes `x-request-id` as its own request id, so engine logs and usage rows share one id.
    """
    response: aiohttp.ClientResponse | None = None
    headers = {**HEADERS, "x-request-id": request_id}
    try:
        async with asyncio.timeout(first_byte_timeout):
            response = await session.post(
                base_url + request.kind.value, data=request.upstream_body, headers=headers
            )
            content_type = response.headers.get("content-type", "application/json")
            streaming = request.upstream_streams and response.status == 200
            body = await (response.content.readany() if streaming else response.read())
    except TimeoutError:
        _close(response)
        raise AttemptFailed("timeout") from None
    except aiohttp.ClientError:
        _close(response)
        raise AttemptFailed("connect" if response is None else "read") from None
    except asyncio.CancelledError:
        _close(response)
        raise
    if response.status >= 500 or (streaming and not body):
        _close(response)
        raise AttemptFailed("status" if response.status >= 500 else "empty")
    if not streaming:
        response.release()
        return Answer(response.status, content_type, body)
    return Answer(response.status, content_type, body, response)


def _close(response: aiohttp.ClientResponse | None) -> None:
    if response is not None:
        response.close()
