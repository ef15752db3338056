"""Builds the admin ASGI app. The gateway (or `modelplex ledger serve`) forwards /admin/ to it."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, FastAPI, Request
from starlette.exceptions import HTTPException

from modelplex import __version__
from modelplex.billing.api.accounts import accounts_router
from modelplex.billing.api.errors import install_error_handlers
from modelplex.billing.api.money import money_router
from modelplex.billing.ledger import Ledger

PREFIX = "/admin/v1"


def _admin_guard(token: str | None) -> Callable[[Request], None]:
    expected = None if token is None else token.encode()

    def check(request: Request) -> None:
        if expected is None:
            raise HTTPException(401, "the admin API is disabled: set MODELPLEX_BILLING_ADMIN_TOKEN")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(401, "a valid admin bearer token is required")

    return check


def build_admin_app(ledger: Ledger, on_change: Callable[[], None] | None = None) -> FastAPI:
    """The admin API over `ledger`. `on_change` runs after every write (e.g. a KeyAuthority's `forget`)."""
    secret = ledger.settings.admin_token
    app = FastAPI(
        title="Modelplex ledger admin API",
        version=__version__,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        dependencies=[Depends(_admin_guard(None if secret is None else secret.get_secret_value()))],
    )
    install_error_handlers(app)
    changed = on_change or (lambda: None)
    app.include_router(accounts_router(ledger, changed), prefix=PREFIX)
    app.include_router(money_router(ledger), prefix=PREFIX)
    return app
