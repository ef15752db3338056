"""A corpus of hostile HTTP/1.1 requests, sent as raw bytes, and a raw client that reads one answer.

Each entry is what a client without a key may send: broken framing, smuggling attempts, odd
encodings, path traversal, unusual methods, oversized parts. Whatever the gateway answers, it must
not be a 5xx, and it must keep serving.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

KEYLESS_CHAT = b'{"model":"m1","messages":[{"role":"user","content":"hi"}]}'

MALFORMED = [  # not HTTP/1.1: answered 400 by the connection layer, before any application code
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello",
    b"POST /v1/chat/completions HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
    b"GET / HTTP/1.1\r\nx: \x00\r\n\r\n",
    b"POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\n x-folded: continuation\r\n\r\n",
]

ODD = [  # well-framed but hostile: answered 4xx (or a harmless 2xx), never 5xx
    b"GET /../../../../etc/passwd HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET /v1/models%00.json HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET /v1/%ff%fe HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nhost: 169.254.169.254\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nhost: 127.0.0.1:22\r\n\r\n",
    b"TRACE / HTTP/1.1\r\nhost: x\r\n\r\n",
    b"PROPFIND / HTTP/1.1\r\nhost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nhost: x\r\n\r\n",
    b"DELETE /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(KEYLESS_CHAT) + KEYLESS_CHAT,
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \xff\xfe\r\n"
    b"content-length: 2\r\n\r\n{}",
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Basic Zm9vOmJhcg==\r\n"
    b"content-length: 2\r\n\r\n{}",
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-encoding: gzip\r\n"
    b"content-length: 4\r\n\r\n\x1f\x8b\x08\x00",
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    b'4\r\n{"a"\r\n0\r\n\r\n',
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999\r\n\r\n{}",
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n{}",
    b"GET /v1/models?" + b"a=1&" * 2000 + b" HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nGET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",  # pipelined
]


def connect(url: str, timeout: float = 10) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def first_status(url: str, request: bytes) -> int | None:
    """Sends `request` on a new connection; the status of the first answer (None: closed unanswered)."""
    with connect(url) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # nothing more is coming: a server waiting for more answers now
        data = b""
        while b"\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
    if not data:
        return None
    return int(data.split(b" ", 2)[1])
