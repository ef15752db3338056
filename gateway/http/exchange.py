"""One request and its answer on a connection, as ASGI sees it: `receive` hands over the body, `send`
writes the response (the head with the first body bytes, in one write; chunked when the length is not
known in advance).

ASGI extension `modelplex.disconnect` (in `scope["extensions"]`): a function taking a callback that is
called once if the client goes away before the answer is complete, so an app learns of a disconnect
without a task parked in `receive`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, MutableMapping
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelplex.gateway.http.connection import HttpConnection

Message = MutableMapping[str, Any]
DISCONNECT_EXTENSION = "modelplex.disconnect"

_STATUS_LINES = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode()) for status in HTTPStatus
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class ClientGone(OSError):
    """The client is gone: a streamed body has nowhere to go (an OSError, as other servers raise)."""


class _Clock:
    """The `date` header, formatted once per second."""

    second = 0
    header = b""

    @classmethod
    def date(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.header = b"date: %s\r\n" % formatdate(now, usegmt=True).encode()
        return cls.header


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


class Exchange:
    """Made by the connection when a request's headers are in; the body arrives through `feed`."""

    __slots__ = (
        "_body",
        "_body_given",
        "_chunked",
        "_connection",
        "_continue_due",
        "_gone_callbacks",
        "_head_only",
        "_headers",
        "_status",
        "_waiter",
        "body_complete",
        "buffered",
        "disconnected",
        "finished",
        "head_written",
        "keep_alive",
        "scope",
        "started",
    )

    def __init__(
        self, connection: HttpConnection, scope: dict[str, Any], keep_alive: bool, expects_continue: bool
    ) -> None:
        self._connection = connection
        self.scope = scope
        scope["extensions"] = {DISCONNECT_EXTENSION: self._on_disconnect}
        self.keep_alive = keep_alive
        self._continue_due = expects_continue
        self._head_only = scope["method"] == "HEAD"
        self._body: list[bytes] = []
        self.buffered = 0  # body bytes received and not yet handed to the app
        self.body_complete = False
        self._body_given = False
        self._waiter: asyncio.Future[None] | None = None
        self._gone_callbacks: list[Callable[[], None]] | None = None
        self.disconnected = False
        self.started = False
        self.head_written = False
        self.finished = False
        self._chunked = False
        self._status = 200
        self._headers: list[tuple[bytes, bytes]] = []

    # ------------------------------------------------------------------ from the connection

    def feed(self, chunk: bytes) -> None:
        self._body.append(chunk)
        self.buffered += len(chunk)
        self._wake()

    def end_of_body(self) -> None:
        self.body_complete = True
        self._wake()

    def gone(self) -> None:
        """The client went away (or the connection was refused): the app's receive and watchers hear it."""
        if self.disconnected:
            return
        self.disconnected = True
        self._wake()
        if self._gone_callbacks is not None and not self.finished:
            callbacks, self._gone_callbacks = self._gone_callbacks, None
            for callback in callbacks:
                callback()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_disconnect(self, callback: Callable[[], None]) -> None:
        if self._gone_callbacks is None:
            self._gone_callbacks = []
        self._gone_callbacks.append(callback)

    # ------------------------------------------------------------------ ASGI

    async def receive(self) -> Message:
        while True:
            if self.disconnected:
                return {"type": "http.disconnect"}
            if not self._body_given and (self.body_complete or self._body):
                chunks, self._body = self._body, []
                self.buffered = 0
                self._body_given = self.body_complete
                self._connection.body_consumed()
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                return {"type": "http.request", "body": body, "more_body": not self.body_complete}
            if self.finished:  # ASGI: after a complete response, receive says disconnect
                return {"type": "http.disconnect"}
            if self._continue_due and not self.body_complete:
                self._continue_due = False
                self._connection.write(_CONTINUE)
            await self._wait()

    async def _wait(self) -> None:
        waiter = self._waiter = self._connection.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            self._status = message["status"]
            self._headers = message.get("headers") or []
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")
        if not self.started or self.finished:
            raise RuntimeError("http.response.body outside a response")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        connection = self._connection
        if self.disconnected:
            if more:
                raise ClientGone("the client disconnected")
            self.finished = True
            connection.exchange_finished(self)
            return
        if connection.write_paused:
            await connection.drained()
            if self.disconnected:
                raise ClientGone("the client disconnected")
        data = b"" if self.head_written else self._head(len(body), more)
        if self._head_only:
            pass  # HEAD: the head alone
        elif self._chunked:
            if body:
                data += b"%x\r\n%s\r\n" % (len(body), body)
            if not more:
                data += _LAST_CHUNK
        else:
            data += body
        if data:
            connection.write(data)
        if not more:
            self.finished = True
            self._wake()  # a receive waiting meanwhile now says disconnect, as ASGI has it
            connection.exchange_finished(self)

    def _head(self, length: int, more: bool) -> bytes:
        self.head_written = True
        parts = [status_line(self._status), _Clock.date()]
        has_length = False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length":
                has_length = True
            elif lowered == b"connection":
                if value.lower() == b"close":
                    self.keep_alive = False
                continue  # written below, from what this connection will do
            parts.append(b"%s: %s\r\n" % (name, value))
        if not has_length and self._status >= 200 and self._status not in (204, 304):
            if more:
                self._chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                parts.append(b"content-length: %d\r\n" % length)
        if not self.keep_alive or self._connection.closing:
            self.keep_alive = False
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)
