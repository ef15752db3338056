"""The gateway's ASGI application: routes, request flow, and the background work tied to its lifespan."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

from modelplex.billing.contracts import KeyAuthority, UsageSink
from modelplex.gateway.admin_listener import ADMIN_PREFIX, AdminListener
from modelplex.gateway.admission import Admission, may_use
from modelplex.gateway.asgi import (
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_bytes,
    send_error,
)
from modelplex.gateway.budgets.fallback import FallbackBudgets
from modelplex.gateway.budgets.keeper import BudgetKeeper
from modelplex.gateway.budgets.memory import MemoryBudgets
from modelplex.gateway.budgets.reservations import Reservations
from modelplex.gateway.budgets.shared import RedisBudgets
from modelplex.gateway.discovery.base import DiscoverySource
from modelplex.gateway.errors import (
    GatewayError,
    draining,
    journal_unavailable,
    method_not_allowed,
    not_found,
)
from modelplex.gateway.inference import Kind, parse
from modelplex.gateway.journal import Journal, JournalUnwritable
from modelplex.gateway.lifespan import Lifespan, Service
from modelplex.gateway.limits.base import Limiter
from modelplex.gateway.limits.fallback import FallbackLimiter
from modelplex.gateway.limits.memory import MemoryLimiter
from modelplex.gateway.limits.shared import RedisLimiter
from modelplex.gateway.metering import Meter
from modelplex.gateway.metrics import GatewayMetrics
from modelplex.gateway.metrics_page import MetricsPage
from modelplex.gateway.pool import Pool
from modelplex.gateway.routing.base import RouteRequest
from modelplex.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

INFERENCE = {kind.value: kind for kind in Kind}

App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Gateway:
    """One gateway process. `authority` and `sink` are the ledger's seam (billing.contracts); `admin`
    serves every `/admin/` path unchanged, on this app unless settings.admin_port puts it on the
    `admin_listener`; `services` start before serving and stop after."""

    def __init__(
        self,
        settings: GatewaySettings,
        authority: KeyAuthority,
        sink: UsageSink | None,
        discovery: DiscoverySource,
        limiter: Limiter | None = None,
        *,
        admin: App | None = None,
        services: Sequence[Service] = (),
    ) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics(tenant_ids=settings.metrics_tenant_labels)
        self.pool = Pool(settings, self.metrics)
        self.journal = Journal(
            settings.journal_dir, settings.journal_segment_bytes, settings.journal_fsync_interval_seconds
        )
        limiter = limiter or _limiter(settings)
        if isinstance(limiter, FallbackLimiter):
            self.metrics.watch_limits(lambda: limiter.degraded)
        self.admission = Admission(authority, limiter, self.pool, self.metrics)
        keeper = _budget_keeper(settings)
        self.reservations = Reservations(
            authority,
            keeper,
            settings.budget_cache_seconds,
            settings.default_context_tokens,
            settings.prompt_overhead_tokens,
            self.metrics,
        )
        self.lifespan = Lifespan(
            settings, self.pool, self.journal, sink, discovery, (limiter, keeper), self.metrics, services
        )
        metrics_page = MetricsPage(self.metrics, settings.metrics_token)
        separate_admin = settings.admin_port is not None
        self._admin = None if separate_admin else admin
        self._routes: dict[str, App] = {"/healthz": self._healthz, "/v1/models": self._models}
        if settings.metrics_listener == "tenant":
            self._routes["/metrics"] = metrics_page
        self.admin_listener = (
            AdminListener(admin, metrics_page if settings.metrics_listener == "admin" else None)
            if separate_admin
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan.lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        kind = INFERENCE.get(path)
        if kind is not None:
            if scope["method"] != "POST":
                await send_error(send, method_not_allowed(scope["method"]))
                return
            await self._inference(kind, scope, receive, send)
            return
        if self._admin is not None and path.startswith(ADMIN_PREFIX):
            await self._admin(scope, receive, send)
            return
        route = self._routes.get(path)
        if route is None:
            await send_error(send, not_found(path))
        elif scope["method"] != "GET":
            await send_error(send, method_not_allowed(scope["method"]))
        else:
            await route(scope, receive, send)

    async def _inference(self, kind: Kind, scope: Scope, receive: Receive, send: Send) -> None:
        tenant, model, status = "-", "-", 500
        self.lifespan.enter()
        try:
            if self.lifespan.draining:
                raise draining()
            if self.lifespan.journal_unwritable:
                raise journal_unavailable()
            principal = await self.admission.authenticate(scope)
            tenant = principal.tenant_id
            request = parse(
                kind,
                await read_body(receive, scope, self.settings.max_body_bytes),
                self.settings.prefix_chars,
                self.settings.assemble_above_tokens,
            )
            spec = self.admission.model(principal, request.model)
            model = spec.name
            request_id = secrets.token_hex(16)
            meter = Meter(request_id, principal, model, spec.deployment_name)
            hold = await self.reservations.reserve(principal, request, spec, request_id)
            try:
                ticket = await self.admission.admit(principal, request_id, request.estimated_prompt_tokens)
                session = header(scope, b"x-session-id")
                route = RouteRequest(model, request.prefix, session.decode("latin-1") if session else None)
                try:
                    status = await self.lifespan.proxy.serve(request, route, meter, scope, send)
                finally:
                    await self.admission.settle(ticket, _limit_tokens(meter, ticket.estimated_tokens))
            finally:
                await self.reservations.settle(hold, principal, model, meter.usage)
        except GatewayError as exc:
            status = exc.status
            await send_error(send, exc)
        except ClientDisconnected:
            status = 499
        except JournalUnwritable:  # the in-flight table could not grow: nothing was sent upstream
            status = 503
            await send_error(send, journal_unavailable())
        except Exception:
            log.exception("Failed serving request path=%s tenant=%s model=%s", kind.value, tenant, model)
            await send_error(
                send, GatewayError(500, "Internal gateway error.", "server_error", "internal_error")
            )
        finally:
            self.lifespan.leave()
            self.metrics.requests.labels(tenant, model, str(status)).inc()

    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal = await self.admission.authenticate(scope)
        except GatewayError as exc:
            await send_error(send, exc)
            return
        data = [
            {"id": state.spec.name, "object": "model", "created": 0, "owned_by": "modelplex"}
            for state in self.pool.models.values()
            if may_use(principal, state.spec)
        ]
        await send_bytes(send, 200, json.dumps({"object": "list", "data": data}).encode())

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lifespan.draining:
            await send_error(send, draining())
        else:
            await send_bytes(send, 200, b'{"status":"ok"}')


def _limiter(settings: GatewaySettings) -> Limiter:
    if settings.redis_url:
        shared = RedisLimiter(
            settings.redis_url, settings.concurrency_lease_seconds, settings.redis_timeout_seconds
        )
        return FallbackLimiter(shared, MemoryLimiter(), settings.redis_retry_seconds)
    return MemoryLimiter()


def _budget_keeper(settings: GatewaySettings) -> BudgetKeeper:
    if settings.redis_url:
        shared = RedisBudgets(
            settings.redis_url, settings.concurrency_lease_seconds, settings.redis_timeout_seconds
        )
        return FallbackBudgets(shared, MemoryBudgets(), settings.redis_retry_seconds)
    return MemoryBudgets()


def _limit_tokens(meter: Meter, estimate: int) -> int:
    """Tokens charged to the TPM limit: the engine's count; the estimate when a dispatched request
    reported none (a client that leaves a non-streaming request early still used the engine)."""
    if meter.usage.seen or not meter.dispatched:
        return meter.total_tokens
    return estimate
