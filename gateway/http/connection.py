"""One client connection: httptools parses requests as bytes arrive, each request's app runs in a task
of its own, one at a time (pipelined requests wait their turn), and the limits of `limits.py` hold.

Timers: a connection has at most one, armed for the earliest deadline that matters (headers or body
still arriving, or the keep-alive idle time) and re-armed when it fires early. A request whose head
and body arrive together, the usual case, sets no timer of its own, and a busy kept-alive connection
re-arms its idle timer once per keep-alive period, not once per request.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote

import httptools

from modelplex.gateway.errors import GatewayError
from modelplex.gateway.http.exchange import Exchange
from modelplex.gateway.http.limits import (
    LINGER_SECONDS,
    OVER_CAPACITY_GRACE_SECONDS,
    REASONS,
    ConnectionLimits,
    refusal,
)
from modelplex.gateway.lazy_timer import LazyTimer

log = logging.getLogger(__name__)

App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]

# Body bytes buffered for an app that has not read them yet, before the connection stops reading.
BODY_HIGH_WATER = 256 * 1024
# Complete requests queued behind the one being answered, before the connection stops reading.
PIPELINE_DEPTH = 8
ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
_INTERNAL_ERROR_BODY = GatewayError(500, "Internal server error.", "server_error", "internal_error").body()
INTERNAL_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
    b"connection: close\r\n\r\n%s" % (len(_INTERNAL_ERROR_BODY), _INTERNAL_ERROR_BODY)
)

# What the connection waits for, which decides what its deadline means when it passes.
FIRST_REQUEST, IDLE, HEAD, BODY = range(4)


@dataclass
class Listener:
    """What the connections of one listening socket share."""

    app: App
    limits: ConnectionLimits
    on_refused: Callable[[str], None] = lambda reason: None
    name: str = "listener"  # in the log
    connections: set[HttpConnection] = field(default_factory=set)
    busy: int = 0  # connections whose app is answering
    idle: asyncio.Event | None = None  # set while draining, when `busy` falls to 0
    server_address: tuple[str, int] | None = None


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class HttpConnection(asyncio.Protocol):
    def __init__(self, listener: Listener, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._listener = listener
        self._limits = listener.limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._client: tuple[str, int] | None = None
        self._parsing: Exchange | None = None  # headers in, body arriving
        self._active: Exchange | None = None  # being answered
        self._task: asyncio.Task[None] | None = None
        self._queue: deque[Exchange] = deque()
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0  # received while a head is incomplete: what the parser may be buffering
        self._field_bytes = 0
        self._header_count = 0
        self._head_started = 0.0
        self._body_started = 0.0
        self._waiting = FIRST_REQUEST
        self._awaiting_head = True  # bytes that arrive are the head of the next request
        self._head_open = False  # a request's head has begun and is not complete
        self._deadline = math.inf
        self._timer = LazyTimer(loop, lambda: self._deadline, self._timed_out)
        self._linger: asyncio.TimerHandle | None = None
        self._over_capacity = False
        self._refused = False
        self._reading = True
        self.closing = False  # answer what is under way, then close
        self.write_paused = False
        self._drain: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        connections = self._listener.connections
        connections.add(self)
        self._over_capacity = len(connections) > self._limits.max_connections
        # Beyond the cap a connection is answered as soon as its headers are in, or dropped soon.
        grace = OVER_CAPACITY_GRACE_SECONDS if self._over_capacity else self._limits.header_timeout_seconds
        self._expect(FIRST_REQUEST, self.loop.time() + grace)

    def connection_lost(self, exc: Exception | None) -> None:
        self._listener.connections.discard(self)
        self._timer.cancel()
        if self._linger is not None:
            self._linger.cancel()
        for exchange in (self._active, self._parsing, *self._queue):
            if exchange is not None:
                exchange.gone()
        self._queue.clear()
        self._release_writers()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: read and dropped
        if self._awaiting_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            self._refuse(cause.status if isinstance(cause, _Refused) else 400)
            return
        except httptools.HttpParserUpgrade:
            pass  # no protocol upgrades here: the request is served as plain HTTP
        except httptools.HttpParserError:
            self._refuse(400)
            return
        if self._awaiting_head and self._head_bytes > self._limits.max_header_bytes:
            self._refuse(431)
            return
        self._settle_deadline()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self._release_writers()

    def _release_writers(self) -> None:
        self.write_paused = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    async def drained(self) -> None:
        if self._drain is None:
            self._drain = self.loop.create_future()
        await self._drain

    # ------------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        self._awaiting_head = self._head_open = True
        self._waiting = HEAD
        self._url = b""
        self._headers = []
        self._field_bytes = self._header_count = 0
        self._head_started = self.loop.time()

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_header_bytes:
            raise _Refused(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._field_bytes += len(name) + len(value)
        if (
            self._header_count > self._limits.max_header_count
            or self._field_bytes > self._limits.max_header_bytes
        ):
            raise _Refused(431)
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self._over_capacity:
            raise _Refused(503)
        self._awaiting_head = self._head_open = False
        self._head_bytes = 0
        self._body_started = self.loop.time()
        parser = self._parser
        exchange = Exchange(
            self,
            self._scope(parser.get_method().decode("ascii"), parser.get_http_version()),
            parser.should_keep_alive(),
            (b"expect", b"100-continue") in self._headers,
        )
        self._parsing = exchange
        if self._active is None:
            self._start(exchange)
        else:
            self._queue.append(exchange)
            if len(self._queue) >= PIPELINE_DEPTH:
                self._pause_reading()

    def on_body(self, body: bytes) -> None:
        exchange = self._parsing
        if exchange is not None and not exchange.finished:  # else answered already: dropped
            exchange.feed(body)
            if exchange.buffered > BODY_HIGH_WATER:
                self._pause_reading()

    def on_message_complete(self) -> None:
        exchange, self._parsing = self._parsing, None
        self._awaiting_head = True
        if exchange is not None:
            exchange.end_of_body()

    # ------------------------------------------------------------------ requests

    def _scope(self, method: str, http_version: str) -> dict[str, Any]:
        url = self._url
        if url[:1] == b"/" and b"%" not in url and b"?" not in url:
            raw_path, query, path = url, b"", url.decode("latin-1")
        else:
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path or b"/", parsed.query or b""
            path = unquote(raw_path.decode("latin-1"))
        return {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": http_version,
            "server": self._listener.server_address,
            "client": self._client,
            "scheme": "http",
            "method": method,
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": self._headers,
        }

    def _start(self, exchange: Exchange) -> None:
        self._active = exchange
        self._listener.busy += 1
        self._task = self.loop.create_task(self._answer(exchange))

    async def _answer(self, exchange: Exchange) -> None:
        try:
            await self._listener.app(exchange.scope, exchange.receive, exchange.send)
        except Exception:
            log.exception("Failed answering path=%s", exchange.scope["path"])
            self._unfinished(exchange)
        except asyncio.CancelledError:
            self._unfinished(exchange)
            raise
        else:
            if not exchange.finished:
                if not exchange.disconnected:
                    log.error("Answered nothing path=%s", exchange.scope["path"])
                self._unfinished(exchange)

    def _unfinished(self, exchange: Exchange) -> None:
        """The app stopped without a whole answer: a 500 when nothing was sent, else the connection
        is cut (the client sees the answer is incomplete)."""
        if exchange.finished or exchange.disconnected or self._transport is None:
            self._done(exchange)
            return
        exchange.keep_alive = False
        if not exchange.head_written:
            self.write(INTERNAL_ERROR)
        exchange.finished = True
        self._done(exchange)
        self._transport.close()

    def exchange_finished(self, exchange: Exchange) -> None:
        """The app sent the last of its answer."""
        self._done(exchange)
        transport = self._transport
        if transport is None or self._refused or transport.is_closing():
            return
        if not exchange.keep_alive or self.closing:
            transport.close()
            return
        if self._queue:
            self._start(self._queue.popleft())
        self._resume_reading()
        self._settle_deadline()

    def _done(self, exchange: Exchange) -> None:
        if self._active is exchange:
            self._active = None
            self._task = None
            listener = self._listener
            listener.busy -= 1
            if listener.busy == 0 and listener.idle is not None:
                listener.idle.set()

    def body_consumed(self) -> None:
        if not self._reading and len(self._queue) < PIPELINE_DEPTH:
            self._resume_reading()

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _pause_reading(self) -> None:
        if self._reading and self._transport is not None:
            self._reading = False
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self._reading and self._transport is not None:
            self._reading = True
            self._transport.resume_reading()

    # ------------------------------------------------------------------ shutdown

    def shut_down(self) -> None:
        """Stop taking requests: close now when idle, else once the answer under way is out."""
        self.closing = True
        if self._active is None and self._transport is not None:
            self._transport.close()

    def abort(self) -> asyncio.Task[None] | None:
        """Drain time is over: cancel the answer under way (returned, to be awaited) and close."""
        task = self._task
        if task is not None:
            task.cancel()
        if self._transport is not None:
            self._transport.close()
        return task

    # ------------------------------------------------------------------ deadlines

    def _settle_deadline(self) -> None:
        """Aim the deadline at what the connection now waits for."""
        if self._parsing is not None:
            self._expect(BODY, self._body_started + self._limits.body_timeout_seconds)
        elif self._active is not None:
            self._deadline = math.inf  # the app is answering: no deadline until it is done
        elif self._head_open:
            self._expect(HEAD, self._head_started + self._limits.header_timeout_seconds)
        elif self._waiting != FIRST_REQUEST:
            self._expect(IDLE, self.loop.time() + self._limits.keep_alive_seconds)

    def _expect(self, waiting: int, deadline: float) -> None:
        self._waiting = waiting
        self._deadline = deadline
        self._timer.aim(deadline)

    def _timed_out(self) -> None:
        self._deadline = math.inf
        if self._waiting == IDLE:
            if self._transport is not None:
                self._transport.close()
        elif self._waiting == BODY and self._active is not None and self._active.head_written:
            return  # the body is late, but the app is answering: it owns the connection now
        else:
            self._refuse(408)

    # ------------------------------------------------------------------ refusals

    def _refuse(self, status: int) -> None:
        """Answers `status`, then lingers: the rest of what the client sends is read and dropped for
        a moment, so that closing with unread data does not reset the connection under the answer."""
        transport = self._transport
        if self._refused or transport is None or transport.is_closing():
            return
        self._refused = True
        self._deadline = math.inf
        active = self._active
        if active is not None and not active.finished:
            if active.head_written:  # the answer is under way: cut it, there is nothing to add
                transport.close()
                return
            active.gone()  # the app's receive says so; its answer goes nowhere
        for exchange in (self._parsing, *self._queue):
            if exchange is not None:
                exchange.gone()
        self._queue.clear()
        self._listener.on_refused(REASONS[status][0])
        transport.write(refusal(status))
        if transport.can_write_eof():
            transport.write_eof()
        self._resume_reading()
        self._timer.cancel()
        self._linger = self.loop.call_later(LINGER_SECONDS, transport.close)
