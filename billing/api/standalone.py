"""The admin API as a process of its own (`modelplex ledger serve`): it owns the ledger's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from modelplex.billing.api.app import build_admin_app
from modelplex.billing.ledger import Ledger
from modelplex.billing.settings import BillingSettings


def standalone_app(settings: BillingSettings) -> FastAPI:
    """A root app that opens the ledger at start-up, mounts the admin API, and closes it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = await Ledger.connect(settings)
        app.mount("/", build_admin_app(ledger))
        try:
            yield
        finally:
            await ledger.close()

    return FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
