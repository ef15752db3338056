"""Admin routes for prices, usage and invoices."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from pydantic import Field

from modelplex.billing import price_history, statements, usage
from modelplex.billing.api.pages import Page
from modelplex.billing.export import invoice_csv
from modelplex.billing.invoices import Invoice
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import Instant, month_of, parse_instant, utcnow
from modelplex.billing.price_history import PriceTerms
from modelplex.billing.pricing import PriceRecord
from modelplex.billing.usage import Granularity, UsageBucket


class PriceCreate(PriceTerms):
    """Amounts per 1M tokens as decimal strings (numbers are accepted too)."""

    model: str
    input_per_1m: str | int | float = Field(alias="inputPer1M")
    output_per_1m: str | int | float = Field(alias="outputPer1M")
    cached_input_per_1m: str | int | float | None = Field(default=None, alias="cachedInputPer1M")
    effective_from: Instant | None = None


def _range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    month = month_of(utcnow())
    since = month.start if start is None else parse_instant(start, param="start")
    until = month.end if end is None else parse_instant(end, param="end")
    return since, until


def _price_routes(router: APIRouter, ledger: Ledger) -> None:
    @router.post("/prices", status_code=201, tags=["prices"])
    async def set_price(body: PriceCreate) -> PriceRecord:
        terms = PriceTerms.model_validate(body.model_dump(exclude={"model", "effective_from"}))
        return await price_history.set_price(ledger, body.model, terms, body.effective_from)

    @router.get("/prices", tags=["prices"])
    async def list_prices(model: str | None = None) -> Page[PriceRecord]:
        return Page(data=await price_history.list_prices(ledger, model))


def _usage_routes(router: APIRouter, ledger: Ledger) -> None:
    @router.get("/usage", tags=["usage"])
    async def get_usage(
        tenant: str | None = None,
        model: str | None = None,
        granularity: Granularity = "day",
        start: str | None = None,
        end: str | None = None,
    ) -> Page[UsageBucket]:
        """Usage from the hourly rollups; the range defaults to the current UTC month."""
        since, until = _range(start, end)
        rows = await usage.usage_report(
            ledger, since, until, tenant=tenant, model=model, granularity=granularity
        )
        return Page(data=rows)

    csv: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}

    @router.get("/invoices/{tenant}/{period}", tags=["invoices"], response_model=Invoice, responses=csv)
    async def get_invoice(tenant: str, period: str, format: Literal["json", "csv"] = "json") -> Response:
        invoice = await statements.build_invoice(ledger, tenant, period)
        if format == "csv":
            return PlainTextResponse(invoice_csv(invoice), media_type="text/csv")
        return Response(invoice.model_dump_json(by_alias=True), media_type="application/json")


def money_router(ledger: Ledger) -> APIRouter:
    router = APIRouter()
    _price_routes(router, ledger)
    _usage_routes(router, ledger)
    return router
