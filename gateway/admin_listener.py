"""The gateway's second listener (`--admin-port`): the admin API, and /metrics when it lives here.

It shares the gateway's objects (the ledger's admin app, the metrics) but none of its request flow:
nothing here authenticates tenant keys or reaches an engine. Its lifespan is the gateway's (the
tenant-facing server runs it), so this app answers only HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from modelplex.gateway.asgi import Receive, Scope, Send, send_bytes, send_error
from modelplex.gateway.errors import method_not_allowed, not_found
from modelplex.gateway.metrics_page import MetricsPage

ADMIN_PREFIX = "/admin/"
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class AdminListener:
    def __init__(self, admin: App | None, metrics: MetricsPage | None) -> None:
        self._admin = admin
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if self._admin is not None and path.startswith(ADMIN_PREFIX):
            await self._admin(scope, receive, send)
        elif path == "/metrics" and self._metrics is not None:
            if scope["method"] != "GET":
                await send_error(send, method_not_allowed(scope["method"]))
            else:
                await self._metrics(scope, receive, send)
        elif path == "/healthz" and scope["method"] == "GET":
            await send_bytes(send, 200, b'{"status":"ok"}')
        else:
            await send_error(send, not_found(path))
