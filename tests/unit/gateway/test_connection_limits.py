"""Connection hygiene, over raw sockets against the gateway as `gateway run` serves it: what a client
without a key can hold is bounded, and every refusal is a clear JSON error that closes the connection."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from mpxtest.hostile_http import MALFORMED
from mpxtest.upstream import KEY, World

AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Reads until the server closes: the status, headers and body of its (only) response."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _refused(sock: socket.socket, status: int, code: str) -> dict[str, str]:
    got, headers, body = _answer(sock)
    assert got == status, body
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == code
    return headers


def _refusals(url: str) -> str:
    return "\n".join(
        line for line in httpx.get(url + "/metrics").text.splitlines() if "connections_refused_total{" in line
    )


@pytest.fixture
def gateway(world: World) -> str:
    world.replica()
    world.tenant()
    return world.gateway(
        max_header_bytes=4096,
        max_header_count=20,
        header_timeout_seconds=0.5,
        body_timeout_seconds=0.5,
        keep_alive_seconds=1,
        max_connections=8,
    )


def test_headers_too_large_too_many_or_a_target_too_long_are_refused_with_431_and_414(gateway: str) -> None:
    for request, status, code in [
        (
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 5000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (
            b"GET /healthz HTTP/1.1\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(21)) + b"\r\n",
            431,
            "headers_too_large",
        ),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", 414, "target_too_long"),
    ]:
        with _connect(gateway) as sock:
            sock.sendall(request)
            _refused(sock, status, code)
    assert 'reason="headers_too_large"} 2.0' in _refusals(gateway)


def test_a_header_that_never_ends_is_not_buffered_past_the_limit(gateway: str) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nx-endless: ")
        for _ in range(10):  # 10 KiB of one header value, no end of line, well within the timeout
            sock.sendall(b"a" * 1024)
        _refused(sock, 431, "headers_too_large")


def test_slow_or_silent_clients_are_answered_408_and_closed(gateway: str) -> None:
    with _connect(gateway) as silent, _connect(gateway) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(3):  # a byte now and then keeps a plain server waiting for ever
            time.sleep(0.2)
            slow.sendall(b"x")
        _refused(slow, 408, "too_slow")
        _refused(silent, 408, "too_slow")


def test_a_body_that_stops_arriving_is_answered_408(gateway: str) -> None:
    with _connect(gateway) as sock:
        body = json.dumps(CHAT).encode()
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"authorization: Bearer " + KEY.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        sock.sendall(head + body[:10])
        _refused(sock, 408, "too_slow")


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time(gateway: str) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server, with nothing more said
        assert time.monotonic() - started >= 0.9  # not before the keep-alive time


def test_connections_beyond_the_cap_get_503_and_the_ones_within_are_served(
    world: World, gateway: str
) -> None:
    held = [_connect(gateway) for _ in range(8)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # headers begun, not finished
        with _connect(gateway) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            headers = _refused(extra, 503, "too_many_connections")
            assert headers["retry-after"] == "1"
    finally:
        for sock in held:
            sock.close()
    reply = httpx.post(gateway + "/v1/chat/completions", json=CHAT, headers=AUTH)
    assert reply.status_code == 200  # the slots came back once the held connections were closed


def test_malformed_framing_is_a_400_in_the_openai_shape_and_the_gateway_serves_on(gateway: str) -> None:
    for request in MALFORMED:
        with _connect(gateway) as sock:
            sock.sendall(request)
            _refused(sock, 400, "malformed")
    assert httpx.post(gateway + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200
