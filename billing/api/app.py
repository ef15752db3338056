"""Builds the admin ASGI app. The gateway (or `modelplex ledger serve`) forwards /admin/ to it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, FastAPI, Request

from modelplex import __version__
from modelplex.billing.api.accounts import accounts_router
from modelplex.billing.api.capacity import capacity_router
from modelplex.billing.api.errors import ERROR_RESPONSES, install_error_handlers
from modelplex.billing.api.guard import AdminGuard
from modelplex.billing.api.money import money_router
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


def build_admin_app(ledger: Ledger, on_change: Callable[[], None] | None = None) -> AdminGuard:
    """The admin API over `ledger`, every path of it (OpenAPI and docs too) behind the admin token;
    off when none is configured. `on_change` runs after every write (e.g. a KeyAuthority's `forget`)."""
    secret = ledger.settings.admin_token
    token = None if secret is None else secret.get_secret_value()
    return AdminGuard(build_admin_api(ledger, on_change), token)
