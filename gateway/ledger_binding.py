"""The ledger behind `modelplex gateway run`: its KeyAuthority, its UsageSink and its admin API.

The ledger is opened when the gateway starts (on the server's event loop, where its async engine must
live) and closed after the journal's last shipment. Until then this object only delegates: it is the
gateway's `KeyAuthority`, `UsageSink` and the ASGI app behind `/admin/`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from modelplex.billing.api.app import AdminPlane, build_admin_app
from modelplex.billing.authority import LedgerKeyAuthority
from modelplex.billing.contracts import BudgetStatus, Principal, TokenPrice, UsageEvent
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import Ledger
from modelplex.billing.settings import BillingSettings
from modelplex.gateway.asgi import Receive, Scope, Send

log = logging.getLogger(__name__)


class _Opened:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.authority = LedgerKeyAuthority(ledger)
        self.sink = LedgerSink(ledger)
        # Admin writes made through this gateway show at once; others within auth_cache_seconds.
        self.admin: AdminPlane = build_admin_app(ledger, on_change=self.authority.forget)


class LedgerBinding:
    """`KeyAuthority` + `UsageSink` + admin ASGI app over one `Ledger`, opened with the gateway."""

    def __init__(self, settings: BillingSettings) -> None:
        self._settings = settings
        self._opened: _Opened | None = None

    async def start(self) -> None:
        ledger = await Ledger.connect(self._settings)
        self._opened = _Opened(ledger)
        log.info("Connected ledger dialect=%s", ledger.dialect)

    async def stop(self) -> None:
        if self._opened is not None:
            await self._opened.ledger.close()
            self._opened = None
            log.info("Closed ledger")

    @property
    def _ledger(self) -> _Opened:
        if self._opened is None:
            raise RuntimeError("the ledger is not open")
        return self._opened

    async def authenticate(self, api_key: str) -> Principal | None:
        return await self._ledger.authority.authenticate(api_key)

    async def budget(self, tenant_id: str) -> BudgetStatus:
        return await self._ledger.authority.budget(tenant_id)

    async def price(self, model: str) -> TokenPrice | None:
        return await self._ledger.authority.price(model)

    async def ingest(self, events: Sequence[UsageEvent]) -> int:
        return await self._ledger.sink.ingest(events)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._ledger.admin(scope, receive, send)


def configured_ledger() -> LedgerBinding | None:
    """The ledger MODELPLEX_DATABASE_URL names (with the other MODELPLEX_BILLING_ settings), or None."""
    settings = BillingSettings()
    return LedgerBinding(settings) if settings.database_url is not None else None
