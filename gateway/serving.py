"""Serving a `Gateway` with uvicorn: the tenant-facing listener, and the admin listener when
`admin_port` is set, both in this process on one event loop with one lifespan.

The tenant-facing server runs the gateway's lifespan (it opens the ledger the admin API needs) and
handles SIGINT/SIGTERM as uvicorn always does; the admin server starts once that lifespan has
started and is stopped before it shuts down, so an admin request never meets a closed ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from typing import Literal

import uvicorn

from modelplex.gateway.app import Gateway
from modelplex.gateway.connection_limits import ConnectionLimits, default_max_connections, guarded_protocol
from modelplex.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

ADMIN_DRAIN_SECONDS = 5


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


def server_config(
    app: Gateway | object,
    settings: GatewaySettings,
    port: int,
    lifespan: Literal["on", "off"],
    drain: float,
    on_refused: Callable[[str], None],
) -> uvicorn.Config:
    limits = connection_limits(settings)
    return uvicorn.Config(
        app,  # type: ignore[arg-type]  # uvicorn's ASGI type is narrower than our Scope mapping
        host=settings.host,
        port=port,
        loop="uvloop",
        http=guarded_protocol(limits, on_refused),
        ws="none",
        lifespan=lifespan,
        access_log=False,
        log_config=None,
        timeout_keep_alive=int(max(1, limits.keep_alive_seconds)),
        timeout_graceful_shutdown=int(drain),
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, opened before anything starts so a taken port fails at once."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as error:
        raise ListenError(f"cannot listen on {host}:{port}: {error}") from error


class _AdminServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the tenant-facing server handles the signals and stops this one


class _TenantServer(uvicorn.Server):
    """uvicorn's server, starting the admin listener once started and stopping it before shutdown."""

    def __init__(self, config: uvicorn.Config, admin: _AdminServer, admin_socket: socket.socket) -> None:
        super().__init__(config)
        self._admin = admin
        self._admin_socket = admin_socket
        self._admin_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        self._admin_task = asyncio.create_task(self._admin.serve(sockets=[self._admin_socket]))
        self._admin_task.add_done_callback(self._admin_ended)
        host, port = self._admin_socket.getsockname()[:2]
        log.info("Serving admin listener host=%s port=%d", host, port)

    def _admin_ended(self, task: asyncio.Task[None]) -> None:
        if not self.should_exit:
            error = None if task.cancelled() else task.exception()
            log.error("Stopped admin listener unexpectedly error=%r; stopping the gateway", error)
            self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._admin_task is not None:
            self._admin.should_exit = True
            with contextlib.suppress(Exception):
                await self._admin_task
        await super().shutdown(sockets)


def _counting_refusals(app: Gateway) -> Callable[[str], None]:
    refused = app.metrics.connections_refused
    return lambda reason: refused.labels(reason).inc()


def tenant_config(app: Gateway, settings: GatewaySettings) -> uvicorn.Config:
    """The tenant-facing listener's configuration (it runs the lifespan)."""
    return server_config(
        app, settings, settings.port, "on", settings.drain_timeout_seconds, _counting_refusals(app)
    )


def tenant_server(app: Gateway, settings: GatewaySettings) -> uvicorn.Server:
    """The uvicorn server for `app`; with an admin listener it also serves that, on its own socket."""
    config = tenant_config(app, settings)
    if app.admin_listener is None or settings.admin_port is None:
        return uvicorn.Server(config)
    admin_socket = listen(settings.admin_bind_host, settings.admin_port)
    admin_config = server_config(
        app.admin_listener, settings, settings.admin_port, "off", ADMIN_DRAIN_SECONDS, _counting_refusals(app)
    )
    return _TenantServer(config, _AdminServer(admin_config), admin_socket)
