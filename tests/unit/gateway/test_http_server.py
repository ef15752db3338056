"""The gateway's own HTTP/1.1 server (gateway/http/) with small ASGI apps: framing, pipelining,
100-continue, errors, draining on stop, and the lifespan. (The connection limits: test_connection_limits.py;
everything else the gateway does runs on this server too.)"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from modelplex.gateway.asgi import read_body
from modelplex.gateway.http.connection import Listener
from modelplex.gateway.http.limits import ConnectionLimits
from modelplex.gateway.http.server import HttpServer
from mpxtest.upstream import LoopThread, free_socket

Scope = dict[str, Any]


class App:
    """Answers by path: /echo (the body back), /stream (three chunks), /slow (after `slow` s),
    /hang (never), /boom (raises), /silent (returns without answering)."""

    def __init__(self) -> None:
        self.slow = 0.3
        self.cancelled = 0
        self.started = asyncio.Event()
        self.fail_startup = False

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                kind = "failed" if self.fail_startup else "complete"
                await send({"type": f"lifespan.startup.{kind}", "message": "no"})
                if self.fail_startup:
                    return
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path == "/boom":
            raise RuntimeError("boom")
        if path == "/silent":
            return
        body = await read_body(receive, scope, 1 << 20)
        if path == "/stream":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            for part in (b"one ", b"two ", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if path in ("/slow", "/hang"):
            self.started.set()
            try:
                await asyncio.sleep(self.slow if path == "/slow" else 3600)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": body or path.encode()})


class Served:
    def __init__(self, loop: LoopThread, app: App, drain: float = 5.0) -> None:
        self.loop = loop
        sock = free_socket()
        self.address = sock.getsockname()
        self.url = f"http://{self.address[0]}:{self.address[1]}"
        self.server = HttpServer(
            [(sock, Listener(app, ConnectionLimits()))], lifespan_app=app, drain_seconds=drain
        )
        self.task = asyncio.run_coroutine_threadsafe(self.server.serve(), loop.loop)
        deadline = time.monotonic() + 10
        while not self.server.started and not self.task.done() and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> bool:
        self.server.should_exit = True
        return bool(self.task.result(30))


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def served(loop: LoopThread, app: App) -> Iterator[Served]:
    served = Served(loop, app)
    yield served
    if not served.task.done():
        served.stop()


def _raw(served: Served, data: bytes, until: bytes, sock: socket.socket | None = None) -> bytes:
    own = sock is None
    sock = sock or socket.create_connection(served.address, timeout=5)
    try:
        sock.sendall(data)
        got = b""
        while until not in got:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        if own:
            sock.close()


def test_pipelined_requests_are_answered_in_order_on_one_connection(served: Served) -> None:
    requests = b"".join(
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        for body in (b"first", b"second", b"third")
    )
    got = _raw(served, requests, b"third")
    assert got.count(b"HTTP/1.1 200 OK") == 3
    assert got.index(b"first") < got.index(b"second") < got.index(b"third")


def test_a_response_of_unknown_length_is_chunked_and_read_whole(served: Served) -> None:
    with httpx.Client() as client:
        response = client.post(served.url + "/stream")
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.text == "one two three"
        assert client.get(served.url + "/echo").text == "/echo"  # the connection is reused after it


def test_head_gets_the_headers_and_no_body(served: Served) -> None:
    got = _raw(served, b"HEAD /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", b"\r\n\r\n")
    head, _, rest = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"content-length: 5" in head
    assert rest == b""


def test_expect_100_continue_is_answered_before_the_body_is_sent(served: Served) -> None:
    with socket.create_connection(served.address, timeout=5) as sock:
        head = b"POST /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n"
        interim = _raw(served, head, b"\r\n\r\n", sock)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        final = _raw(served, b"body", b"body", sock)
        assert final.startswith(b"HTTP/1.1 200 OK")
        assert final.endswith(b"body")


@pytest.mark.parametrize("path", ["/boom", "/silent"])
def test_an_app_that_fails_or_answers_nothing_gives_a_500_and_a_closed_connection(
    served: Served, path: str
) -> None:
    with httpx.Client() as client:
        response = client.get(served.url + path)
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
        assert response.headers["connection"] == "close"
        assert client.get(served.url + "/echo").status_code == 200  # the server goes on


def test_stopping_lets_an_answer_under_way_finish_and_takes_no_new_connection(
    loop: LoopThread, app: App, served: Served
) -> None:
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.get, served.url + "/slow")
        asyncio.run_coroutine_threadsafe(app.started.wait(), loop.loop).result(5)
        started = time.monotonic()
        assert served.stop()  # returns once the slow answer is out and the lifespan has shut down
        assert time.monotonic() - started >= app.slow * 0.5
        assert pending.result(5).status_code == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(served.address, timeout=1)
    assert app.cancelled == 0


def test_an_answer_still_under_way_when_the_drain_time_is_over_is_cancelled(
    loop: LoopThread, app: App
) -> None:
    served = Served(loop, app, drain=0.2)
    with socket.create_connection(served.address, timeout=5) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
        asyncio.run_coroutine_threadsafe(app.started.wait(), loop.loop).result(5)
        started = time.monotonic()
        assert served.stop()
        assert time.monotonic() - started < 5
        assert sock.recv(65536) == b""  # closed with nothing said
    assert app.cancelled == 1


def test_asking_twice_cuts_the_drain_short(loop: LoopThread, app: App) -> None:
    served = Served(loop, app, drain=30)
    with socket.create_connection(served.address, timeout=5) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
        asyncio.run_coroutine_threadsafe(app.started.wait(), loop.loop).result(5)
        started = time.monotonic()
        served.server.should_exit = True
        time.sleep(0.2)
        served.server.should_exit = True
        assert served.task.result(10)
        assert time.monotonic() - started < 5
    assert app.cancelled == 1


def test_a_lifespan_that_refuses_to_start_serves_nothing(loop: LoopThread, app: App) -> None:
    app.fail_startup = True
    served = Served(loop, app)
    assert served.task.result(10) is False
    assert not served.server.started
