"""Admin routes for GPU costs, the capacity ledger, unit economics and SLO attainment."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from modelplex.billing import capacity, economics_report, gpu_costs, scaling
from modelplex.billing.api.pages import Page
from modelplex.billing.capacity import IntervalRecord, Observation, ObservationResult
from modelplex.billing.cost_book import CostRecord
from modelplex.billing.economics_report import EconomicsReport, report_range
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import Instant
from modelplex.billing.scaling import DecisionRecord, ReadingRecord
from modelplex.billing.schemas import Request
from modelplex.billing.slo import Attainment


class CostCreate(Request):
    """The per-hour cost of one GPU of a product, as a decimal string (numbers are accepted too)."""

    gpu_product: str = Field(max_length=128)
    per_hour: str | int | float
    currency: str = "USD"
    effective_from: Instant | None = None


def _cost_routes(router: APIRouter, ledger: Ledger) -> None:
    @router.post("/gpu-costs", status_code=201, tags=["capacity"])
    async def set_cost(body: CostCreate) -> CostRecord:
        return await gpu_costs.set_cost(
            ledger, body.gpu_product, body.per_hour, body.currency, body.effective_from
        )

    @router.get("/gpu-costs", tags=["capacity"])
    async def list_costs(gpu_product: str | None = None) -> Page[CostRecord]:
        return Page(data=await gpu_costs.list_costs(ledger, gpu_product))


def _capacity_routes(router: APIRouter, ledger: Ledger) -> None:
    @router.put("/capacity/observations", tags=["capacity"])
    async def observe(body: Observation) -> ObservationResult:
        """Every replica of `source` Ready now: opens, extends and closes serving intervals."""
        return await capacity.record_observation(ledger, body)

    @router.get("/capacity/intervals", tags=["capacity"])
    async def list_intervals(
        period: str | None = None, start: str | None = None, end: str | None = None, model: str | None = None
    ) -> Page[IntervalRecord]:
        span = report_range(period, start, end)
        return Page(data=await capacity.list_intervals(ledger, span.start, span.end, model))

    @router.get("/capacity/scaling-decisions", tags=["capacity"])
    async def list_decisions(
        model: str, period: str | None = None, start: str | None = None, end: str | None = None
    ) -> Page[DecisionRecord]:
        """The autoscaler's decisions about `model` in the range, newest first."""
        span = report_range(period, start, end)
        return Page(data=await scaling.list_decisions(ledger, model, span.start, span.end))

    @router.get("/capacity/scaling-readings", tags=["capacity"])
    async def list_readings(model: str) -> Page[ReadingRecord]:
        """The autoscaler's latest reading of each deployment serving `model`: its load now."""
        return Page(data=await scaling.list_readings(ledger, model))


def _report_routes(router: APIRouter, ledger: Ledger) -> None:
    @router.get("/economics", tags=["economics"])
    async def get_economics(
        period: str | None = None, start: str | None = None, end: str | None = None, currency: str = "USD"
    ) -> EconomicsReport:
        """GPU-hours, cost, tokens, cost per 1M tokens, revenue, margin, idle share, latency per model."""
        return await economics_report.economics_report(ledger, report_range(period, start, end), currency)

    @router.get("/slo", tags=["economics"])
    async def get_slo(
        period: str | None = None, start: str | None = None, end: str | None = None, tenant: str | None = None
    ) -> Page[Attainment]:
        """Each tenant's TTFT, error rate and availability against its plan's objectives."""
        span = report_range(period, start, end)
        return Page(data=await economics_report.slo_report(ledger, span, tenant))


def capacity_router(ledger: Ledger) -> APIRouter:
    router = APIRouter()
    _cost_routes(router, ledger)
    _capacity_routes(router, ledger)
    _report_routes(router, ledger)
    return router
