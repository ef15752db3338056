"""Builds the admin ASGI app. The gateway (or `modelplex ledger serve`) forwards /admin/ to it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, FastAPI, Request

from modelplex import __version__
from modelplex.billing.api.accounts import accounts_router
from modelplex.billing.api.capacity import capacity_router
from modelplex.billing.api.errors import ERROR_RESPONSES, install_error_handlers
from modelplex.billing.api.guard import AdminGuard, ASGIApp, Receive, Scope, Send
from modelplex.billing.api.money import money_router
from modelplex.billing.console.app import Console
from modelplex.billing.errors import InvalidInput
from modelplex.billing.ledger import Ledger
from modelplex.billing.text import storable_text_problem

PREFIX = "/admin/v1"


def _storable_parameters(request: Request) -> None:
    """Path and query values go to the database as bound parameters; refuse those no database can
    hold intact (a %00 in a tenant name would make PostgreSQL fail the query)."""
    values = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in values:
        if isinstance(value, str) and (problem := storable_text_problem(value)) is not None:
            raise InvalidInput(f"{name} {problem}", param=name)


def build_admin_api(ledger: Ledger, on_change: Callable[[], None] | None = None) -> FastAPI:
    """The admin routes over `ledger`, without the token check (see build_admin_app)."""
    app = FastAPI(
        title="Modelplex ledger admin API",
        version=__version__,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        dependencies=[Depends(_storable_parameters)],
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    changed = on_change or (lambda: None)
    app.include_router(accounts_router(ledger, changed), prefix=PREFIX)
    app.include_router(money_router(ledger), prefix=PREFIX)
    app.include_router(capacity_router(ledger), prefix=PREFIX)
    return app


class AdminPlane:
    """/admin/v1/ (and every path outside /admin/) is the API behind the bearer token; the rest of
    /admin/ is the console, which signs people in itself. Both are off without an admin token."""

    def __init__(self, api: AdminGuard, console: ASGIApp | None) -> None:
        self._api = api
        self._console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._console is not None and scope["type"] == "http" and is_console_path(scope["path"]):
            await self._console(scope, receive, send)
        else:
            await self._api(scope, receive, send)


def is_console_path(path: str) -> bool:
    return (path == "/admin" or path.startswith("/admin/")) and not (
        path == PREFIX or path.startswith(PREFIX + "/")
    )


def build_admin_app(ledger: Ledger, on_change: Callable[[], None] | None = None) -> AdminPlane:
    """The admin API over `ledger`, every path of it (OpenAPI and docs too) behind the admin token,
    and the console beside it; both off when no token is configured. `on_change` runs after every
    write (e.g. a KeyAuthority's `forget`)."""
    secret = ledger.settings.admin_token
    token = None if secret is None else secret.get_secret_value()
    api = AdminGuard(build_admin_api(ledger, on_change), token)
    return AdminPlane(api, None if token is None else Console(ledger, token))
