"""`modelplex up`: the ledger, the gateway with its admin API, and local engine workers, in one process."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelplex.engine.cpu_features import auto_dtype, machine_flags
from modelplex.engine.install import EngineSettings, environment, require
from modelplex.gateway.app import App, Gateway
from modelplex.gateway.http.server import HttpServer
from modelplex.gateway.ledger_binding import LedgerBinding
from modelplex.gateway.serving import tenant_server
from modelplex.gateway.settings import GatewaySettings
from modelplex.local import ledger_setup
from modelplex.local.autoscaler import LocalAutoscaler
from modelplex.local.capacity import LocalCapacity
from modelplex.local.cpu_slots import usable_cores
from modelplex.local.runtime import LocalRuntime, load_templates
from modelplex.local.settings import LocalSettings
from modelplex.local.templates import WorkerTemplate
from modelplex.local.workers import WorkerPool
from modelplex.operator.autoscaler.settings import AutoscalerSettings
from modelplex.processes import pid_alive

log = logging.getLogger(__name__)
CONSOLE_PATH = "/admin/"  # the operators' web console, when the admin app serves one


class StackError(RuntimeError):
    """The stack cannot start; the message says why and what to do. Nothing was left running."""


@dataclass(frozen=True)
class Endpoints:
    host: str
    port: int

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


def _metrics_base(gateway: GatewaySettings, endpoints: Endpoints) -> str:
    """Where the local autoscaler reads the gateway's /metrics: the listener that serves it."""
    if gateway.metrics_listener == "admin" and gateway.admin_port is not None:
        return f"http://{gateway.admin_bind_host}:{gateway.admin_port}"
    return endpoints.base


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise StackError(
                    f"port {port} on {host} is already in use; stop what uses it or pick another with "
                    "--port (or MODELPLEX_LOCAL_PORT)"
                ) from None
            raise StackError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def claim_pid_file(path: Path) -> None:
    if path.exists():
        text = path.read_text().strip()
        if text.isdigit() and pid_alive(int(text)) and int(text) != os.getpid():
            raise StackError(f"a local stack is already running (pid {text}); stop it first (Ctrl-C there)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")


def admin_base(gateway: GatewaySettings, endpoints: Endpoints) -> str:
    """Where /admin/ is served: the admin listener when there is one, else the tenant-facing port."""
    if gateway.admin_port:
        return f"http://{gateway.admin_bind_host}:{gateway.admin_port}"
    return endpoints.base


async def serves_page(app: App, path: str) -> bool:
    """Whether `app` answers a browser's `GET path` without credentials with a page or a redirect
    to one (a sign-in page): asked in process, so that the banner names only what is there."""
    status = 0

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"accept", b"text/html")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    await app(scope, receive, send)
    return 200 <= status < 400


def banner(
    endpoints: Endpoints, admin: str, api_key: str, admin_token: str, model: str, console: bool
) -> str:
    """What `modelplex up` prints once every model answers; `admin` is where /admin/ is served."""
    base = endpoints.base
    message = '[{"role": "user", "content": "Say hello in one sentence."}]'
    console_line = f"Console: {admin}/admin/ (sign in with the admin token)\n" if console else ""
    return f"""
Gateway: {base}/v1
API key: {api_key}
{console_line}Admin API: {admin}/admin/v1/ (send Authorization: Bearer <admin token>)
Admin token: {admin_token}
  e.g. curl {admin}/admin/v1/tenants -H "Authorization: Bearer {admin_token}"

Try it with curl:
curl {base}/v1/chat/completions -H "Authorization: Bearer {api_key}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{model}", "messages": {message}, "max_tokens": 32}}'

or with the openai Python client:
python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{base}/v1", api_key="{api_key}")
reply = client.chat.completions.create(model="{model}", messages={message}, max_tokens=32)
print(reply.choices[0].message.content)
PY

Usage so far: modelplex usage    Stop: Ctrl-C
"""


class Stack:
    """Everything `modelplex up` runs, wired together; `serve()` returns the exit code."""

    def __init__(
        self,
        settings: LocalSettings,
        files: list[Path],
        engine_settings: EngineSettings,
        templates: list[WorkerTemplate],
    ) -> None:
        self.settings = settings
        self.failure: str | None = None
        self.templates = templates
        engine = require(engine_settings)
        engine_environment = environment(engine_settings, engine.device)
        pool = WorkerPool(
            engine.server_command(),
            engine_environment,
            settings.local_dir / "logs",
            settings.worker_start_timeout_seconds,
            cores=usable_cores(engine_environment) if engine.device == "cpu" else None,
            auto_dtype=auto_dtype(machine_flags()) if engine.device == "cpu" else None,
        )
        self.runtime = LocalRuntime(
            settings, files, engine_settings.models_dir, pool, self._announce, self._fail
        )
        self.endpoints = Endpoints(settings.host, settings.port)
        self.gateway_settings = GatewaySettings(
            host=settings.host, port=settings.port, journal_dir=settings.local_dir / "journal"
        )
        token = self.gateway_settings.metrics_token
        self.autoscaler = LocalAutoscaler(
            AutoscalerSettings(),
            pool,
            _metrics_base(self.gateway_settings, self.endpoints),
            settings.replicas_file,
            gateway_metrics_token=None if token is None else token.get_secret_value(),
        )
        self._server: HttpServer | None = None
        self._ledger: LedgerBinding | None = None
        self._access: ledger_setup.DemoAccess | None = None
        self._printing: set[asyncio.Task[None]] = set()

    def _announce(self) -> None:
        """Called on the event loop once every model answers: print the banner."""
        task = asyncio.get_running_loop().create_task(self._print_banner())
        self._printing.add(task)
        task.add_done_callback(self._printing.discard)

    async def _print_banner(self) -> None:
        if self._ledger is None or self._access is None:
            raise RuntimeError("the banner comes once the ledger is prepared and the gateway serves")
        try:
            console = await serves_page(self._ledger, CONSOLE_PATH)
        except Exception as error:  # the banner must come out whatever the admin app does
            log.warning("Failed asking the admin app for its console error=%s", type(error).__name__)
            console = False
        admin = admin_base(self.gateway_settings, self.endpoints)
        access, model = self._access, self.templates[0].served_name
        print(banner(self.endpoints, admin, access.api_key, access.admin_token, model, console), flush=True)

    def _fail(self, message: str) -> None:
        self.failure = message
        print(f"Error: a model could not start:\n{message}", file=sys.stderr, flush=True)
        if self._server is not None:
            self._server.should_exit = True

    async def serve(self) -> int:
        claim_pid_file(self.settings.pid_file)
        (self.settings.local_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            return await self._serve()
        finally:
            self.settings.pid_file.unlink(missing_ok=True)

    async def _serve(self) -> int:
        billing = ledger_setup.billing_settings(self.settings.local_dir)
        self._access = await ledger_setup.prepare(
            billing, self.settings.local_dir, self.settings.demo_tenant, self.templates
        )
        await ledger_setup.ensure_cpu_cost(billing, self.settings.cpu_cost_per_hour)
        self.runtime.capacity = LocalCapacity(billing)
        self.runtime.capacity.scaling = self.autoscaler.reports
        gateway_settings = self.gateway_settings
        ledger = self._ledger = LedgerBinding(billing)
        app = Gateway(
            gateway_settings,
            ledger,
            ledger,
            self.runtime,
            admin=ledger,
            services=(ledger, self.runtime, self.autoscaler),
        )
        print(
            f"Starting {len(self.templates)} model(s) on the local engine; vLLM takes a minute or two "
            f"to load on a CPU. Worker logs: {self.settings.local_dir / 'logs'}",
            flush=True,
        )
        # the same server(s) as `gateway run`: with MODELPLEX_GATEWAY_ADMIN_PORT, an admin listener too
        self._server = tenant_server(app, gateway_settings)
        await self._server.serve_until_signalled()
        return 1 if self.failure else 0


def run(settings: LocalSettings, files: list[Path], engine_settings: EngineSettings) -> int:
    """Check everything that can be checked before starting anything, then serve until stopped."""
    templates = load_templates(settings, files, engine_settings.models_dir)
    check_port(settings.host, settings.port)
    stack = Stack(settings, files, engine_settings, templates)
    return asyncio.run(stack.serve())
