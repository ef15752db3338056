"""The console's routes: sign-in and out, the operator's pages, a tenant's own page, downloads.

Every page needs a session; a page of the other role is 403. A tenant's pages take no tenant from
the URL at all (they show the session's tenant), so no URL can reach another tenant's data.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, Router

from modelplex.billing.console import charts, data
from modelplex.billing.console.filters import Filters, next_month, previous_month, read_filters
from modelplex.billing.console.history import load_history
from modelplex.billing.console.render import Pages
from modelplex.billing.console.sessions import (
    LIFETIME,
    close_session,
    csrf_token,
    find_session,
    open_session,
    same_secret,
)
from modelplex.billing.console.signin import viewer_for
from modelplex.billing.console.viewer import Viewer
from modelplex.billing.console.web import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    FormTooLarge,
    clear_cookie,
    form_fields,
    page,
    redirect,
    safe_next,
    same_origin,
    secure_headers,
    set_cookie,
    static_files,
)
from modelplex.billing.errors import LedgerError
from modelplex.billing.export import invoice_csv
from modelplex.billing.invoices import Invoice
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import parse_period, utcnow
from modelplex.billing.statements import build_invoice

_log = logging.getLogger(__name__)
SIGNIN_SECONDS = 3600
Handler = Callable[[Request, Viewer], Awaitable[Response]]


class Console:
    def __init__(self, ledger: Ledger, admin_token: str) -> None:
        self._ledger = ledger
        self._admin_token = admin_token
        self._pages = Pages()
        self._static = static_files()
        # Asset URLs carry a digest of the bytes, so browsers may cache them and never see stale ones.
        self._versions = {
            name: hashlib.sha256(body).hexdigest()[:12] for name, (body, _) in self._static.items()
        }
        self.router = Router(
            routes=[
                Route("/admin", self._home),
                Route("/admin/", self._home),
                Route("/admin/login", self._signin_page, methods=["GET"]),
                Route("/admin/login", self._signin, methods=["POST"]),
                Route("/admin/logout", self._signout, methods=["POST"]),
                Route("/admin/static/{name:path}", self._asset, methods=["GET"]),
                Route("/admin/overview", self._operator(self._overview), methods=["GET"]),
                Route("/admin/tenants", self._operator(self._tenants), methods=["GET"]),
                Route("/admin/tenants/{tenant}", self._operator(self._tenant), methods=["GET"]),
                Route("/admin/models", self._operator(self._models), methods=["GET"]),
                Route("/admin/models/{model:path}", self._operator(self._model), methods=["GET"]),
                Route("/admin/invoices", self._operator(self._invoices), methods=["GET"]),
                Route("/admin/invoices/{tenant}/{file}", self._operator(self._invoice_file), methods=["GET"]),
                Route("/admin/account", self._tenant_only(self._account), methods=["GET"]),
                Route(
                    "/admin/account/invoices/{file}", self._tenant_only(self._account_file), methods=["GET"]
                ),
            ],
            default=self._unrouted,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.router(scope, receive, send)

    # --- rendering -------------------------------------------------------------------------------

    def _static_url(self, name: str) -> str:
        return f"/admin/static/{name}?v={self._versions.get(name, '0')}"

    def _render(
        self, name: str, request: Request, viewer: Viewer | None, status: int = 200, **values: Any
    ) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        session_csrf = csrf_token(self._ledger.pepper, token) if viewer else ""
        html = self._pages.render(
            name,
            viewer=viewer,
            csrf=values.pop("csrf", session_csrf),
            static=self._static_url,
            filters=values.pop("filters", None),
            section=values.pop("section", ""),
            tenant_filter=values.pop("tenant_filter", False),
            **values,
        )
        return page(html, status)

    def _problem(
        self, request: Request, viewer: Viewer | None, status: int, title: str, message: str
    ) -> Response:
        return self._render("error.html", request, viewer, status, title=title, message=message)

    def _filtered(self, **values: Any) -> dict[str, Any]:
        filters: Filters = values["filters"]
        return {"previous": previous_month(filters.period), "following": next_month(filters.period), **values}

    # --- access ----------------------------------------------------------------------------------

    async def _viewer(self, request: Request) -> Viewer | None:
        token = request.cookies.get(SESSION_COOKIE)
        return None if token is None else await find_session(self._ledger, token)

    def _guarded(self, handler: Handler, role: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            viewer = await self._viewer(request)
            if viewer is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect(f"/admin/login?{urlencode({'next': target})}")
            if viewer.role != role:
                return self._problem(
                    request, viewer, 403, "Not yours", "This page is not open to your sign-in."
                )
            try:
                return await handler(request, viewer)
            except LedgerError as error:
                status = 404 if error.status == 404 else 400
                title = "Not found" if status == 404 else "Bad request"
                named = f"{error.param}: {error.message}" if error.param else error.message
                return self._problem(request, viewer, status, title, named)

        return endpoint

    def _operator(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return self._guarded(handler, "operator")

    def _tenant_only(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return self._guarded(handler, "tenant")

    # --- sign-in ---------------------------------------------------------------------------------

    async def _home(self, request: Request) -> Response:
        viewer = await self._viewer(request)
        if viewer is None:
            return redirect("/admin/login")
        return redirect("/admin/overview" if viewer.is_operator else "/admin/account")

    async def _signin_page(self, request: Request, problem: str = "", status: int = 200) -> Response:
        secret = secrets.token_urlsafe(32)
        response = self._render(
            "login.html",
            request,
            None,
            status,
            title="Sign in",
            problem=problem,
            # The form echoes this cookie (double submit): another site can post a form, not read it.
            csrf=secret,
            next=safe_next(request.query_params.get("next")) or "",
        )
        response.headers["x-robots-tag"] = "noindex"
        set_cookie(response, request, SIGNIN_COOKIE, secret, SIGNIN_SECONDS)
        return response

    async def _signin(self, request: Request) -> Response:
        try:
            fields = await form_fields(request)
        except FormTooLarge:
            return await self._signin_page(request, "That form was too large.", 413)
        expected = request.cookies.get(SIGNIN_COOKIE, "")
        if not same_origin(request) or not expected or not same_secret(fields.get("csrf", ""), expected):
            return await self._signin_page(request, "The sign-in form had expired; try again.", 403)
        viewer = await viewer_for(self._ledger, self._admin_token, fields.get("secret", ""))
        if viewer is None:
            _log.info("Refused a console sign-in")
            return await self._signin_page(
                request, "That is neither the admin token nor a valid API key.", 401
            )
        token = await open_session(self._ledger, viewer)
        _log.info("Console sign-in role=%s tenant=%s", viewer.role, viewer.tenant_name)
        home = "/admin/overview" if viewer.is_operator else "/admin/account"
        target = safe_next(fields.get("next")) if viewer.is_operator else None
        response = redirect(target or home)
        set_cookie(response, request, SESSION_COOKIE, token, int(LIFETIME.total_seconds()))
        clear_cookie(response, request, SIGNIN_COOKIE)
        return response

    async def _signout(self, request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        try:
            fields = await form_fields(request)
        except FormTooLarge:
            fields = {}
        viewer = await self._viewer(request)
        if viewer is not None:
            if not same_origin(request) or not same_secret(
                fields.get("csrf", ""), csrf_token(self._ledger.pepper, token)
            ):
                return self._problem(
                    request, viewer, 403, "Not signed out", "The sign-out form had expired; try again."
                )
            await close_session(self._ledger, token)
        response = redirect("/admin/login")
        clear_cookie(response, request, SESSION_COOKIE)
        return response

    # --- operator pages --------------------------------------------------------------------------

    def _filters(self, request: Request) -> Filters:
        return read_filters(request.query_params.multi_items(), utcnow())

    async def _overview(self, request: Request, viewer: Viewer) -> Response:
        filters, now = self._filters(request), utcnow()
        overview = await data.overview(self._ledger, filters.period, now)
        return self._render(
            "overview.html",
            request,
            viewer,
            **self._filtered(
                filters=filters,
                section="Overview",
                title="Overview",
                data=overview,
                usage_chart=charts.usage_chart(overview.days, filters.period, now),
            ),
        )

    async def _tenants(self, request: Request, viewer: Viewer) -> Response:
        filters = self._filters(request)
        lines = await data.tenant_list(self._ledger, filters.period)
        return self._render(
            "tenants.html",
            request,
            viewer,
            **self._filtered(filters=filters, section="Tenants", title="Tenants", lines=lines),
        )

    async def _tenant_page(
        self, request: Request, viewer: Viewer, tenant: str, download_base: str, section: str
    ) -> Response:
        filters, now = self._filters(request), utcnow()
        detail = await data.tenant_detail(self._ledger, tenant, filters.period, now)
        return self._render(
            "tenant.html",
            request,
            viewer,
            **self._filtered(
                filters=filters,
                section=section,
                title=detail.line.name,
                detail=detail,
                download_base=download_base,
                show_keys=True,
                usage_chart=charts.usage_chart(detail.days, filters.period, now),
            ),
        )

    async def _tenant(self, request: Request, viewer: Viewer) -> Response:
        name = request.path_params["tenant"]
        return await self._tenant_page(request, viewer, name, f"/admin/invoices/{name}", "Tenants")

    async def _models(self, request: Request, viewer: Viewer) -> Response:
        filters = self._filters(request)
        report, serving = await data.model_list(self._ledger, filters.period)
        return self._render(
            "models.html",
            request,
            viewer,
            **self._filtered(
                filters=filters, section="Models", title="Models", report=report, serving=serving
            ),
        )

    async def _model(self, request: Request, viewer: Viewer) -> Response:
        filters, now = self._filters(request), utcnow()
        detail = await data.model_detail(self._ledger, request.path_params["model"], filters.period, now)
        settings = self._ledger.settings
        history = await load_history(
            settings.prometheus_url,
            settings.prometheus_timeout_seconds,
            detail.economics.model,
            filters.period.start,
            min(now, filters.period.end),
        )
        return self._render(
            "model.html",
            request,
            viewer,
            **self._filtered(
                filters=filters,
                section="Models",
                title=detail.economics.model,
                detail=detail,
                replicas_chart=charts.replicas_chart(
                    detail.replica_steps,
                    min(now, filters.period.end),
                    [(decision.decided_at, decision.to_replicas) for decision in detail.decisions],
                ),
                usage_chart=charts.usage_chart(detail.days, filters.period, now),
                history=history,
            ),
        )

    async def _invoices(self, request: Request, viewer: Viewer) -> Response:
        filters = self._filters(request)
        invoices = await data.invoice_list(self._ledger, filters.period, filters.tenant)
        return self._render(
            "invoices.html",
            request,
            viewer,
            **self._filtered(
                filters=filters,
                section="Invoices",
                title="Invoices",
                invoices=invoices,
                tenant_filter=True,
            ),
        )

    async def _invoice_file(self, request: Request, viewer: Viewer) -> Response:
        return await self._download(request.path_params["tenant"], request.path_params["file"])

    # --- a tenant's own page ---------------------------------------------------------------------

    async def _account(self, request: Request, viewer: Viewer) -> Response:
        assert viewer.tenant_id is not None
        return await self._tenant_page(
            request, viewer, viewer.tenant_id, "/admin/account/invoices", "Account"
        )

    async def _account_file(self, request: Request, viewer: Viewer) -> Response:
        assert viewer.tenant_id is not None
        return await self._download(viewer.tenant_id, request.path_params["file"])

    # --- shared ----------------------------------------------------------------------------------

    async def _download(self, tenant: str, file: str) -> Response:
        """`<YYYY-MM>.csv` or `<YYYY-MM>.json`: the invoice exactly as the admin API exports it."""
        period, _, kind = file.rpartition(".")
        if kind not in ("csv", "json"):
            return secure_headers(PlainTextResponse("ask for YYYY-MM.csv or YYYY-MM.json", status_code=404))
        invoice: Invoice = await build_invoice(self._ledger, tenant, parse_period(period).label)
        name = f"invoice-{invoice.tenant}-{invoice.period}.{kind}"
        body = invoice_csv(invoice) if kind == "csv" else invoice.model_dump_json(by_alias=True)
        media = "text/csv" if kind == "csv" else "application/json"
        response = Response(
            body, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'}
        )
        return secure_headers(response)

    async def _asset(self, request: Request) -> Response:
        found = self._static.get(request.path_params["name"])
        if found is None:
            return await self._not_found(request)
        body, media = found
        response = Response(
            body, media_type=media, headers={"cache-control": "public, max-age=86400, immutable"}
        )
        return secure_headers(response, cache=True)

    async def _not_found(self, request: Request) -> Response:
        viewer = await self._viewer(request)
        return self._problem(request, viewer, 404, "Not found", "There is no console page here.")

    async def _unrouted(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self._not_found(Request(scope, receive))
        await response(scope, receive, send)
