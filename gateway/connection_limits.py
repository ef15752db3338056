"""HTTP/1.1 connection hygiene: what a client without a key can cost the gateway is bounded.

uvicorn's httptools protocol (pinned version) with limits it does not have:
- the request line and headers: at most `max_header_bytes` and `max_header_count`, else 431 (414 for
  the target alone), counted as bytes arrive, so a header that never ends is not buffered for ever;
- `header_timeout_seconds` from the connection (or the next request's first byte) to the end of the
  headers, else 408: a slow-header client (slowloris) holds a connection that long at most;
- `body_timeout_seconds` from the end of the headers to the end of the body, else 408;
- `keep_alive_seconds` idle between requests (uvicorn's own timer), then the connection is closed;
- at most `max_connections` open; the ones beyond are answered 503 and closed.
Every refusal is a JSON body in the OpenAI error shape with `connection: close`, counted in
`modelplex_gateway_connections_refused_total{reason}`, and never logged per occurrence (an attacker
must not be able to flood the log).
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelplex.gateway.errors import GatewayError

REASONS = {  # status -> (reason label, reason phrase, message)
    400: ("malformed", "Bad Request", "The request is not valid HTTP/1.1."),
    408: ("too_slow", "Request Timeout", "The request did not arrive in time."),
    414: ("target_too_long", "URI Too Long", "The request target is too long."),
    431: (
        "headers_too_large",
        "Request Header Fields Too Large",
        "The request headers are too large or too many.",
    ),
    503: (
        "too_many_connections",
        "Service Unavailable",
        "The gateway has too many open connections; retry shortly.",
    ),
}
# Sockets kept back for everything else a gateway opens (engines, ledger, redis, journal files).
RESERVED_DESCRIPTORS = 1024
OVER_CAPACITY_GRACE_SECONDS = 1.0
LINGER_SECONDS = 1.0


def default_max_connections(ceiling: int = 16384) -> int:
    """What the open-file limit leaves for client connections, at most `ceiling`."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return ceiling
    return max(64, min(ceiling, soft - RESERVED_DESCRIPTORS))


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: float = 75.0
    max_connections: int = 16384


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def refusal(status: int, retry_after: int = 1) -> bytes:
    """A whole HTTP/1.1 response closing the connection, with an OpenAI-shaped JSON body."""
    reason, phrase, message = REASONS[status]
    body = GatewayError(status, message, "invalid_request_error", code=reason).body()
    lines = [
        f"HTTP/1.1 {status} {phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if status == 503:
        lines.append(f"retry-after: {retry_after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Set `limits` and `on_refused` on a subclass (see `guarded_protocol`)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    on_refused: ClassVar[Callable[[str], None]] = staticmethod(lambda reason: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._head_bytes = 0  # as received, while a head is incomplete: what the parser may be buffering
        self._field_bytes = 0  # the target and the header names and values of this request
        self._header_count = 0
        self._over_capacity = False
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._over_capacity = len(self.connections) > self.limits.max_connections
        # Beyond the cap a connection is answered as soon as its headers are in, or dropped soon.
        self._arm(OVER_CAPACITY_GRACE_SECONDS if self._over_capacity else self.limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: read and dropped
        self._unset_keepalive_if_required()
        if self._awaiting_headers:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            self._refuse(cause.status if isinstance(cause, _Refused) else 400)
            return
        except httptools.HttpParserUpgrade:
            return  # no protocol upgrades here: the request is served as plain HTTP
        except httptools.HttpParserError:
            self._refuse(400)
            return
        if self._awaiting_headers and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True
        self._field_bytes = self._header_count = 0
        if self._deadline is None:  # the first byte of a request on a kept-alive connection
            self._arm(self.limits.header_timeout_seconds)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_header_bytes:
            raise _Refused(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._field_bytes += len(name) + len(value)
        if (
            self._header_count > self.limits.max_header_count
            or self._field_bytes > self.limits.max_header_bytes
        ):
            raise _Refused(431)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._over_capacity:
            raise _Refused(503)
        self._awaiting_headers = False
        self._head_bytes = 0
        self._disarm()
        super().on_headers_complete()
        self._arm(self.limits.body_timeout_seconds)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is not None and not self._awaiting_headers and cycle.response_started:
            return  # the body is late, but the application is answering: it owns the connection now
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        """Answers `status`, then lingers: the rest of what the client sends is read and dropped for
        a moment, so that closing with unread data does not reset the connection under the answer."""
        self._disarm()
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # the answer is under way: cut it, there is nothing to add
                self.transport.close()
                return
            cycle.disconnected = True  # the application's receive() says so; its answer goes nowhere
            cycle.message_event.set()
        type(self).on_refused(REASONS[status][0])
        self.transport.write(refusal(status))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)


def guarded_protocol(
    limits: ConnectionLimits, on_refused: Callable[[str], None]
) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` enforcing `limits`."""
    return type(
        "GatewayHttpProtocol",
        (GuardedHttpToolsProtocol,),
        {"limits": limits, "on_refused": staticmethod(on_refused)},
    )
