"""What a client without a key can cost the gateway: the HTTP/1.1 limits, and the answers that enforce
them.

- the request line and headers: at most `max_header_bytes` and `max_header_count`, else 431 (414 for
  the target alone), counted as bytes arrive, so a header that never ends is not buffered for ever;
- `header_timeout_seconds` from the connection (or the next request's first byte) to the end of the
  headers, else 408: a slow-header client (slowloris) holds a connection that long at most;
- `body_timeout_seconds` from the end of the headers to the end of the body, else 408;
- `keep_alive_seconds` idle between requests, then the connection is closed;
- at most `max_connections` open; the ones beyond are answered 503 and closed.
Every refusal is a JSON body in the OpenAI error shape with `connection: close`, counted in
`modelplex_gateway_connections_refused_total{reason}`, and never logged per occurrence (an attacker
must not be able to flood the log).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

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
