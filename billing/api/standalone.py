"""The admin API as a process of its own (`modelplex ledger serve`): it owns the ledger's lifetime.

A plain ASGI app rather than a FastAPI app with the admin API mounted: a mount only routes paths its
pattern matches, and Starlette's pattern does not match a path holding a newline (`%0A`), which the
root app then answered itself, outside the admin API's token check and error shape.
"""

from __future__ import annotations

import gc

from modelplex.billing.api.app import AdminPlane, build_admin_app
from modelplex.billing.api.guard import Receive, Scope, Send
from modelplex.billing.ledger import Ledger
from modelplex.billing.settings import BillingSettings


class StandaloneAdmin:
    """Opens the ledger at start-up, serves the admin API (every path), closes the ledger at shutdown."""

    def __init__(self, settings: BillingSettings) -> None:
        self._settings = settings
        self._ledger: Ledger | None = None
        self._admin: AdminPlane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif self._admin is None:
            raise RuntimeError("the admin API is not started")
        else:
            await self._admin(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._ledger = await Ledger.connect(self._settings)
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": repr(error)})
                    return
                self._admin = build_admin_app(self._ledger)
                # As the gateway does: what start-up made lives as long as the process, so keep it out
                # of the cyclic collector's passes (a fifth of a big console page's time without this).
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._ledger is not None:
                    await self._ledger.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def standalone_app(settings: BillingSettings) -> StandaloneAdmin:
    return StandaloneAdmin(settings)
