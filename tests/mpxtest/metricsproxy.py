"""The /metrics pages of kwok's pods, which run nothing: an HTTP proxy on loopback that answers for them.

The autoscaler scrapes `http://<pod IP>:8000/metrics`; with HTTP_PROXY pointing here, every such
request arrives at this server, which answers with the page the test set for that address (or the
default page, or an error status), so the test decides each engine's and gateway's load. A
`MetricsPage` serves one page on a loopback port of its own (what a Prometheus scrapes in tests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest


def engine_page(waiting: int = 0, running: int = 0, kv_cache: float = 0.0, model: str = "m") -> str:
    """A vLLM /metrics page with the three gauges the autoscaler reads."""
    labels = f'{{engine="0",model_name="{model}"}}'
    return (
        "# TYPE vllm:num_requests_waiting gauge\n"
        f"vllm:num_requests_waiting{labels} {waiting}\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running{labels} {running}\n"
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f"vllm:kv_cache_usage_perc{labels} {kv_cache}\n"
    )


def gateway_page(model: str, queued: int = 0, in_flight: int = 0, answered: int = 0) -> str:
    """A Modelplex gateway /metrics page for one model."""
    return (
        "# TYPE modelplex_gateway_queue_depth gauge\n"
        f'modelplex_gateway_queue_depth{{model="{model}"}} {queued}\n'
        "# TYPE modelplex_gateway_in_flight gauge\n"
        f'modelplex_gateway_in_flight{{model="{model}",replica="r0"}} {in_flight}\n'
        "# TYPE modelplex_gateway_requests counter\n"
        f'modelplex_gateway_requests_total{{code="200",model="{model}",tenant="t"}} {answered}\n'
    )


def send_page(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    """Answer with a Prometheus text page (or an error status)."""
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain; version=0.0.4")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class MetricsPage:
    """A /metrics page on its own loopback port, from `render()` at every request; `status` other
    than 200 fails it."""

    def __init__(self, render: Callable[[], str]) -> None:
        self.render = render
        self.status = 200
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                send_page(self, page.status, page.render().encode() if page.status == 200 else b"down")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.address}/metrics"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class MetricsProxy:
    def __init__(self) -> None:
        self.pages: dict[str, str | int] = {}  # "host:port" -> page text, or an HTTP status to fail with
        self.default: str | int = 404
        self.asked: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def page(self, address: str) -> str | int:
        self.asked.add(address)
        return self.pages.get(address, self.default)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target = urlsplit(self.path)  # a proxy receives the absolute URL
                page = proxy.page(target.netloc)
                status, body = (page, b"") if isinstance(page, int) else (200, page.encode())
                send_page(self, status, body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def metrics_proxy() -> Iterator[MetricsProxy]:
    proxy = MetricsProxy()
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
