"""The server: listening sockets, each with its app and limits, one ASGI lifespan for them all, and a
graceful stop.

Stopping (SIGINT/SIGTERM, or `should_exit = True`): the listening sockets close, idle connections
close, answers under way get `drain_seconds` to finish (a second signal cuts that short), what is left
is cancelled, then the lifespan shuts down. Nothing polls: the server sleeps until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import uvloop

from modelplex.gateway.http.connection import ASGI_VERSION, App, HttpConnection, Listener

log = logging.getLogger(__name__)

STARTUP_FAILED_EXIT = 3
CLEANUP_SECONDS = 5.0  # for cancelled answers to bill what they served and let go


class StartupFailed(Exception):
    """The app's lifespan refused to start."""


class _Lifespan:
    """The ASGI lifespan protocol, spoken to one app."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._replies: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._replies.get()
        if reply["type"] != "lifespan.startup.complete":
            raise StartupFailed(str(reply.get("message", "")))

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        reply = await self._replies.get()
        if reply["type"] != "lifespan.shutdown.complete":
            log.error("Failed shutting down message=%s", reply.get("message", ""))
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": {}}
        try:
            await self._app(scope, self._inbox.get, self._replies.put)
        except Exception as exc:
            log.exception("Failed in the lifespan")
            await self._replies.put({"type": "lifespan.startup.failed", "message": repr(exc)})


class HttpServer:
    def __init__(
        self,
        listeners: Sequence[tuple[socket.socket, Listener]],
        lifespan_app: App | None = None,
        drain_seconds: float = 30.0,
    ) -> None:
        self._listeners = listeners
        self._lifespan_app = lifespan_app
        self._drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self._should_exit = False
        self.started = False

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        """Ask the server to stop; safe from any thread."""
        if not value:
            return
        if self._should_exit and self._loop is not None and self._hurry is not None:
            self._loop.call_soon_threadsafe(self._hurry.set)  # asked twice: no more draining
        self._should_exit = True
        if self._loop is not None and self._exit is not None:
            self._loop.call_soon_threadsafe(self._exit.set)

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (uvloop); exits with status 3 when the app does not start."""
        if not uvloop.run(self.serve_until_signalled()):
            raise SystemExit(STARTUP_FAILED_EXIT)

    async def serve_until_signalled(self) -> bool:
        """`serve`, stopping on SIGINT/SIGTERM (a second one cuts the drain short)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled, sig)
        try:
            return await self.serve()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _signalled(self, sig: signal.Signals) -> None:
        log.info("Received signal=%s", sig.name)
        self.should_exit = True

    async def serve(self) -> bool:
        """Start, serve until asked to stop, stop. False when the lifespan failed to start."""
        loop = self._loop = asyncio.get_running_loop()
        self._exit, self._hurry = asyncio.Event(), asyncio.Event()
        if self._should_exit:
            self._exit.set()
        lifespan = _Lifespan(self._lifespan_app) if self._lifespan_app is not None else None
        if lifespan is not None:
            try:
                await lifespan.startup()
            except StartupFailed as exc:
                log.error("Failed starting message=%s", exc)
                return False
        servers: list[asyncio.AbstractServer] = []
        try:
            for sock, listener in self._listeners:
                servers.append(await loop.create_server(_factory(listener, loop), sock=sock, backlog=2048))
                host, port = sock.getsockname()[:2]
                listener.server_address = (str(host), int(port))
                log.info("Serving %s host=%s port=%d", listener.name, host, port)
            self.started = True
            await self._exit.wait()
        finally:
            for server in servers:
                server.close()
            await self._stop_connections()
            if lifespan is not None:
                await lifespan.shutdown()
        return True

    async def _stop_connections(self) -> None:
        listeners = [listener for _, listener in self._listeners]
        busy = sum(listener.busy for listener in listeners)
        if busy:
            log.info("Draining connections busy=%d", busy)
        for listener in listeners:
            listener.idle = asyncio.Event()
            if listener.busy == 0:
                listener.idle.set()
            for connection in list(listener.connections):
                connection.shut_down()
        assert self._hurry is not None
        waits = [asyncio.ensure_future(listener.idle.wait()) for listener in listeners if listener.idle]
        either: list[asyncio.Future[Any]] = [
            asyncio.gather(*waits),
            asyncio.ensure_future(self._hurry.wait()),
        ]
        await asyncio.wait(either, timeout=self._drain_seconds, return_when=asyncio.FIRST_COMPLETED)
        for future in either:
            future.cancel()
        cancelled = [
            task
            for listener in listeners
            for connection in list(listener.connections)
            if (task := connection.abort())
        ]
        if cancelled:
            log.warning("Cancelled answers still under way after draining count=%d", len(cancelled))
            await asyncio.wait(cancelled, timeout=CLEANUP_SECONDS)


def _factory(listener: Listener, loop: asyncio.AbstractEventLoop) -> Callable[[], HttpConnection]:
    return lambda: HttpConnection(listener, loop)
