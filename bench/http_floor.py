"""The floor under the gateway's added latency: a forwarder with no features on the same HTTP stack.

Starts the fixed-latency backend (bench/gateway_backend.py) and a minimal ASGI app on uvicorn +
uvloop + httptools that forwards each request body to it with an aiohttp session (what the gateway
is built on, without auth, limits, routing, metering or journal), then measures it exactly like
bench/gateway_overhead.py measures the gateway (non-streaming). Prints numbers; asserts nothing.

    .venv/bin/python bench/http_floor.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import aiohttp
import uvicorn
import uvloop
from gateway_overhead import ROOT, body, closed_loop, free_port, open_loop, pct, start, wait_up

PATH = "/v1/chat/completions"


def forwarder(backend: str) -> Any:
    session: aiohttp.ClientSession | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal session
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                    await send({"type": "lifespan.startup.complete"})
                else:
                    assert session is not None
                    await session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert session is not None
        data = b""
        while True:
            message = await receive()
            data += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {"content-type": "application/json"}
        async with session.post(backend + scope["path"], data=data, headers=headers) as reply:
            answer, status = await reply.read(), reply.status
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return app


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
        uvicorn.run(
            forwarder(backend),
            host="127.0.0.1",
            port=int(port),
            log_level="warning",
            loop="uvloop",
            http="httptools",
        )
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
