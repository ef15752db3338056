"""Calls to engine replicas: HTTP/1.1 over pooled keep-alive connections, one asyncio Protocol per
connection with httptools' response parser. Any failure before the first byte is an `AttemptFailed`
(retryable).

Why not a general client: the gateway sends one kind of request (a POST of a JSON body) and reads one
kind of answer (a whole body, or a stream it relays chunk by chunk). Written for that, a call costs a
fraction of aiohttp's CPU, and a stream's chunks go from the parser to the reader without a task, a
timer or a copy per chunk (docs/benchmarks.md, issue 16).
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from modelplex.gateway.inference import InferenceRequest
from modelplex.gateway.lazy_timer import LazyTimer

ACCEPT = b"application/json, text/event-stream"
# vLLM serves with uvicorn, which closes a connection idle for 5 s: reuse one only well before that.
REUSE_IDLE_SECONDS = 3.0
MAX_IDLE_PER_REPLICA = 512


class AttemptFailed(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # connect, timeout, read, status, empty


class StreamBroken(Exception):
    """The replica's connection failed, or its answer was not valid HTTP, after the first byte."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int
    tls: bool
    prefix: str  # the path the base URL ends with ("" for most engines)
    host_header: bytes

    @classmethod
    def of(cls, base_url: str) -> Address:
        parts = urlsplit(base_url)
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname or "127.0.0.1"
        return cls(host, port, tls, parts.path.rstrip("/"), parts.netloc.encode())


class _Connection(asyncio.Protocol):
    """One connection to a replica; carries one exchange at a time. The parser's callbacks fill the
    exchange's state and wake the one coroutine that waits on it.

    Its exchange fails with TimeoutError at `deadline` (the first byte's) or when silent for
    `idle_limit` seconds (a stream's). One timer serves both, armed lazily and re-armed when it fires
    early: a connection reused for many exchanges, or a stream of many chunks, sets no timer per
    exchange or chunk.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, address: Address) -> None:
        self.loop = loop
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._timer = LazyTimer(loop, self._due, lambda: self.fail(TimeoutError()))
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.content_type = b"application/json"
        self.chunks: list[bytes] = []
        self.got_headers = False
        self.complete = False
        self.keep_alive = False
        self.error: Exception | None = None
        self.last_data = 0.0
        self.deadline = math.inf
        self.idle_limit = math.inf

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but one

    def data_received(self, data: bytes) -> None:
        self.last_data = self.loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = StreamBroken(f"invalid HTTP from the replica: {exc}")
            self.close()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            self.error = StreamBroken("the replica closed the connection")
        self._wake()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.got_headers = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()

    def send(self, head: bytes, body: bytes, deadline: float) -> None:
        assert self.transport is not None
        self._begin()
        self.deadline = deadline
        self.arm()
        self.transport.write(head + body)

    def take(self) -> bytes:
        chunks, self.chunks = self.chunks, []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def wait(self) -> None:
        """Until the parser made progress, or the connection failed."""
        waiter = self._waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def arm(self) -> None:
        """Make sure the timer fires by the time this exchange is due."""
        self._timer.aim(self._due())

    def _due(self) -> float:
        return min(self.deadline, self.last_data + self.idle_limit)

    def fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        self.closed = True
        self._timer.cancel()
        if self.transport is not None:
            self.transport.close()


class Stream:
    """The rest of a streamed answer. `read` returns what arrived since the last read (b"" at the
    end); it raises StreamBroken when the replica fails, TimeoutError when it is silent for
    `idle_seconds`. `close` when done: a finished exchange returns its connection to the pool,
    anything else closes it (a closed connection is how the engine learns to stop generating)."""

    __slots__ = ("_closed", "_connection", "_pool")

    def __init__(self, pool: Upstream, connection: _Connection, idle_seconds: float) -> None:
        self._pool = pool
        self._connection = connection
        connection.idle_limit = idle_seconds
        self._closed = False

    async def read(self) -> bytes:
        connection = self._connection
        while not connection.chunks:
            if connection.complete:
                return b""
            if connection.error is not None:
                raise connection.error
            connection.arm()
            await connection.wait()
        return connection.take()

    async def drain(self, seconds: float) -> bytes:
        """End the exchange early and return what the replica had sent by then: the request side is
        half-closed, which makes the engine abort as a close would, while what it had already written
        (tokens it will count) is still read, until it closes its side or `seconds` pass. Call `close`
        after. A TLS connection cannot be half-closed: it returns only what already arrived."""
        connection = self._connection
        transport = connection.transport
        if not (connection.complete or connection.closed) and transport and transport.can_write_eof():
            transport.write_eof()
            connection.deadline = connection.loop.time() + seconds
            while not connection.complete and connection.error is None:
                connection.arm()
                await connection.wait()
            connection.keep_alive = False  # its request side is shut: never reuse it
        return connection.take()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.finish(self._connection)


@dataclass(slots=True)
class Answer:
    """An upstream response that has produced its first bytes: a whole body, or a stream to read on."""

    status: int
    content_type: str
    body: bytes  # the whole body; for a stream, the first chunk
    stream: Stream | None = None


class Upstream:
    """Keep-alive connections to the replicas, by address; no limit on how many are open at once
    (the pool's admission decides how many requests a replica gets)."""

    def __init__(self, connect_timeout: float, idle_stream_timeout: float) -> None:
        self._connect_timeout = connect_timeout
        self._idle_stream_timeout = idle_stream_timeout
        self._addresses: dict[str, Address] = {}
        self._idle: dict[Address, deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None

    async def call(
        self, base_url: str, request: InferenceRequest, request_id: str, first_byte_timeout: float
    ) -> Answer:
        """Send the request; return once the first bytes of a non-5xx answer are in.

        vLLM takes `x-request-id` as its own request id, so engine logs and usage rows share one id.
        """
        address = self._addresses.get(base_url)
        if address is None:
            address = self._addresses[base_url] = Address.of(base_url)
        head = b"POST %s%s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\naccept: %s\r\n" % (
            address.prefix.encode(),
            request.kind.value.encode(),
            address.host_header,
            ACCEPT,
        )
        head += b"x-request-id: %s\r\ncontent-length: %d\r\n\r\n" % (
            request_id.encode(),
            len(request.upstream_body),
        )
        connection: _Connection | None = None
        deadline = asyncio.get_running_loop().time() + first_byte_timeout
        try:
            connection = await self._exchange(address, head, request.upstream_body, deadline)
            streaming = request.upstream_streams and connection.status == 200
            while not (connection.complete or (streaming and connection.chunks)):
                if connection.error is not None:
                    raise connection.error
                await connection.wait()
            connection.deadline = math.inf
        except TimeoutError:
            self._discard(connection)
            raise AttemptFailed("timeout") from None
        except StreamBroken:
            self._discard(connection)
            raise AttemptFailed("read") from None
        except BaseException:
            self._discard(connection)
            raise
        body = connection.take()
        status = connection.status
        if status >= 500 or (streaming and not body):
            self._discard(connection)
            raise AttemptFailed("status" if status >= 500 else "empty")
        content_type = connection.content_type.decode("latin-1")
        if not streaming:
            self.finish(connection)
            return Answer(status, content_type, body)
        return Answer(status, content_type, body, Stream(self, connection, self._idle_stream_timeout))

    async def _exchange(self, address: Address, head: bytes, body: bytes, deadline: float) -> _Connection:
        """A connection whose answer's headers are in by `deadline` (else TimeoutError)."""
        connection = self._reusable(address)
        if connection is not None:
            connection.send(head, body, deadline)
            if await _headers(connection):
                return connection
            if isinstance(connection.error, TimeoutError):
                raise connection.error
            # The replica closed this connection while it sat idle (nothing of an answer came back):
            # one fresh try, as any HTTP client does.
            self._discard(connection)
        connection = await self._connect(address, deadline)
        connection.send(head, body, deadline)
        if not await _headers(connection):
            assert connection.error is not None
            raise connection.error
        return connection

    def _reusable(self, address: Address) -> _Connection | None:
        idle = self._idle.get(address)
        if not idle:
            return None
        oldest_usable = asyncio.get_running_loop().time() - REUSE_IDLE_SECONDS
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be timed out
            if not connection.closed and connection.idle_since >= oldest_usable:
                return connection
            self._discard(connection)
        return None

    async def _connect(self, address: Address, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + self._connect_timeout)):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, address), address.host, address.port, ssl=self._ssl(address)
                )
        except (OSError, TimeoutError):
            raise AttemptFailed("connect") from None
        self._open.add(connection)
        return connection

    def _ssl(self, address: Address) -> ssl.SSLContext | None:
        if not address.tls:
            return None
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def finish(self, connection: _Connection) -> None:
        """Done with the exchange: keep the connection for the next one when its answer was whole."""
        connection.deadline = connection.idle_limit = math.inf
        if connection.complete and connection.keep_alive and not connection.closed:
            idle = self._idle.setdefault(connection.address, deque())
            if len(idle) < MAX_IDLE_PER_REPLICA:
                connection.idle_since = asyncio.get_running_loop().time()
                idle.append(connection)
                return
        self._discard(connection)

    def _discard(self, connection: _Connection | None) -> None:
        if connection is not None:
            connection.close()
            self._open.discard(connection)

    async def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()


async def _headers(connection: _Connection) -> bool:
    """Wait for the answer's headers; False when the connection failed first."""
    while not connection.got_headers:
        if connection.error is not None:
            return False
        await connection.wait()
    return True
