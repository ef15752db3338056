"""Serving a `Gateway`: the tenant-facing listener, and the admin listener when `admin_port` is set,
both on one event loop with one lifespan (the gateway's: it opens the ledger the admin API needs),
served by the gateway's own HTTP server (`gateway/http/`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from modelplex.gateway.app import Gateway
from modelplex.gateway.http.connection import Listener
from modelplex.gateway.http.limits import ConnectionLimits, default_max_connections
from modelplex.gateway.http.server import HttpServer
from modelplex.gateway.settings import GatewaySettings


class ListenError(Exception):
    """A listener could not be opened (address in use, unknown host, ...)."""


def connection_limits(settings: GatewaySettings) -> ConnectionLimits:
    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout_seconds=settings.header_timeout_seconds,
        body_timeout_seconds=settings.body_timeout_seconds,
        keep_alive_seconds=settings.keep_alive_seconds,
        max_connections=settings.max_connections or default_max_connections(),
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, opened before anything starts so a taken port fails at once."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as error:
        raise ListenError(f"cannot listen on {host}:{port}: {error}") from error


def _counting_refusals(app: Gateway) -> Callable[[str], None]:
    refused = app.metrics.connections_refused
    return lambda reason: refused.labels(reason).inc()


def tenant_server(app: Gateway, settings: GatewaySettings, sock: socket.socket | None = None) -> HttpServer:
    """The server for `app` on `sock` (default: settings.host:port); with an admin listener it also
    serves that, on its own socket. Raises ListenError when a port cannot be had."""
    limits = connection_limits(settings)
    refused = _counting_refusals(app)
    listeners = [(sock or listen(settings.host, settings.port), Listener(app, limits, refused, "gateway"))]
    if app.admin_listener is not None and settings.admin_port is not None:
        admin_socket = listen(settings.admin_bind_host, settings.admin_port)
        listeners.append((admin_socket, Listener(app.admin_listener, limits, refused, "admin listener")))
    return HttpServer(listeners, lifespan_app=app, drain_seconds=settings.drain_timeout_seconds)
