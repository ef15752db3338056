"""The floor under the gateway's added latency: a forwarder with no features on the same HTTP stack.

Starts the fixed-latency backend (bench/gateway_backend.py) and a minimal ASGI app on the gateway's
own server (gateway/http/, uvloop) that forwards each request body with the gateway's engine client
(gateway/upstream.py), without auth, limits, routing, metering or journal, then measures it exactly
like bench/gateway_overhead.py measures the gateway (non-streaming). Prints numbers; asserts nothing.

    .venv/bin/python bench/http_floor.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import MutableMapping
from typing import Any

import uvloop
from gateway_overhead import ROOT, body, closed_loop, free_port, open_loop, pct, start, wait_up

from modelplex.gateway.asgi import read_body
from modelplex.gateway.http.connection import Listener
from modelplex.gateway.http.limits import ConnectionLimits
from modelplex.gateway.http.server import HttpServer
from modelplex.gateway.inference import InferenceRequest, Kind
from modelplex.gateway.upstream import Upstream

PATH = "/v1/chat/completions"


def forwarder(backend: str) -> Any:
    upstream = Upstream(connect_timeout=5, idle_stream_timeout=60)

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await upstream.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        data = await read_body(receive, scope, 1 << 20)
        request = InferenceRequest(Kind.CHAT, "m", False, False, False, "", 1, data, len(data))
        answer = await upstream.call(backend, request, "0" * 32, 60)
        headers = [(b"content-type", answer.content_type.encode())]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    return app


def serve(backend: str, port: int) -> None:
    app = forwarder(backend)
    sock = socket.create_server(("127.0.0.1", port), backlog=2048)
    HttpServer([(sock, Listener(app, ConnectionLimits()))], lifespan_app=app).run()


async def measure(direct: str, forwarded: str, seconds: float) -> None:
    data = body(False)
    for rps in (100, 500):
        base = await open_loop(direct, data, rps, seconds)
        via = await open_loop(forwarded, data, rps, seconds)
        print(
            f"non-streaming {rps:4} RPS  added p50 {pct(via, 50) - pct(base, 50):5.2f} ms "
            f"p99 {pct(via, 99) - pct(base, 99):5.2f} ms"
        )
    rate = await closed_loop(forwarded, data, 64, seconds)
    print(f"non-streaming max sustained: {rate:7.0f} RPS via forwarder")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--serve", nargs=2, metavar=("BACKEND_URL", "PORT"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        backend, port = options.serve
        serve(backend, int(port))
        return
    backend_port, forwarder_port = free_port(), free_port()
    backend = start([sys.executable, str(ROOT / "gateway_backend.py"), str(backend_port), "5"])
    proxy = start(
        [sys.executable, __file__, "--serve", f"http://127.0.0.1:{backend_port}", str(forwarder_port)]
    )
    try:
        wait_up(backend_port)
        wait_up(forwarder_port)
        uvloop.run(
            measure(
                f"http://127.0.0.1:{backend_port}{PATH}",
                f"http://127.0.0.1:{forwarder_port}{PATH}",
                options.seconds,
            )
        )
    finally:
        for process in (proxy, backend):
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
