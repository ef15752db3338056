"""The little of ASGI the gateway needs: types, reading a bounded body, sending whole responses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from modelplex.gateway.errors import GatewayError, too_large
from modelplex.gateway.http.exchange import DISCONNECT_EXTENSION

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
SSE = b"text/event-stream"


class ClientDisconnected(Exception):
    """The client went away while the gateway was reading its request or writing the answer."""


class ClientWatch:
    """Cancels the current task when the client disconnects; start it once the body has been read.

    Cancelling (rather than racing the work against a watcher task) interrupts the work wherever it
    waits: in the queue, for the replica, or writing to the client. The server calls back on a
    disconnect (its `modelplex.disconnect` extension), so watching costs no task. Stop it before the
    response's last message.
    """

    __slots__ = ("_active", "_cancels", "_task", "left")

    def __init__(self, scope: Scope) -> None:
        self.left = False
        self._active = True
        self._cancels = True
        self._task = asyncio.current_task()
        on_disconnect = scope.get("extensions", {}).get(DISCONNECT_EXTENSION)
        if on_disconnect is None:
            raise RuntimeError(
                "the gateway is served by its own HTTP server (modelplex.gateway.serving): this server "
                f"does not offer the ASGI extension {DISCONNECT_EXTENSION!r} it needs"
            )
        on_disconnect(self._gone)

    def _gone(self) -> None:
        if not self._active:
            return
        self.left = True
        if self._cancels and self._task is not None:
            self._task.cancel()

    def detach(self) -> None:
        """From now on a disconnect is only noted in `left`: the work goes on to its end."""
        self._cancels = False

    def stop(self) -> None:
        self._active = False

    def forgive(self) -> None:
        """Take back the cancellation this watch caused, once its CancelledError has been caught."""
        if self._task is not None:
            self._task.uncancel()


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(receive: Receive, scope: Scope, limit: int) -> bytes:
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_bytes(
    send: Send, status: int, body: bytes, content_type: bytes = JSON, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    raw.extend((k.encode(), v.encode()) for k, v in (headers or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: GatewayError) -> None:
    await send_bytes(send, error.status, error.body(), headers=error.headers)


async def start_stream(send: Send, status: int, request_id: str) -> None:
    headers = [
        (b"content-type", SSE),
        (b"cache-control", b"no-cache"),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def send_chunk(send: Send, chunk: bytes) -> None:
    try:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except OSError as exc:  # the server raises ClientGone (an OSError) on a closed connection
        raise ClientDisconnected from exc


async def end_stream(send: Send) -> None:
    try:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError as exc:
        raise ClientDisconnected from exc
