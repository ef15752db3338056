"""Unit economics, pure: GPU-hours, GPU cost, tokens, cost per 1M tokens, revenue, margin, tokens/s per
GPU, idle share, latency quantiles and error rates, all derived from what the ledger already holds
(intervals, cost history, hourly rollups, invoices), never stored a second time.

Units and rounding (docs/architecture.md, "Capacity and economics"): time in whole microseconds;
GPU cost exact per piece of interval x cost in force, rounded half-up to the currency's minor unit
once per model, a total being the sum of its rounded models (like invoice lines); revenue is the sum
of the invoice lines of the model, so it is what the invoices say to the cent; rates and shares are
rounded half-up to 6 decimal places, latencies to 0.001 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from modelplex.billing.busy import busy_minutes
from modelplex.billing.capacity import IntervalRecord
from modelplex.billing.cost_book import CostBook, gpu_hours, micros, span_cost
from modelplex.billing.currencies import round_money
from modelplex.billing.histograms import empty, quantile
from modelplex.billing.invoices import Invoice
from modelplex.billing.schemas import Record

RATE = Decimal("0.000001")
LATENCY = Decimal("0.001")
MICROS_PER_MINUTE = 60_000_000
ALL_MODELS = "*"


def _rate(value: Decimal) -> Decimal:
    return value.quantize(RATE, rounding=ROUND_HALF_UP)


@dataclass
class GpuSpend:
    """GPU time of one model in a range: costed in the report's currency, or not."""

    gpu_micros: int = 0
    uncosted_micros: int = 0  # no cost in force, or one in another currency
    cost: Decimal = Decimal(0)  # exact
    busy_micros: int = 0


@dataclass
class Served:
    """What one model (or one tenant) served in a range, summed from hourly rollups."""

    requests: int = 0
    aborted: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    ttft: list[int] = field(default_factory=empty)
    duration: list[int] = field(default_factory=empty)

    def add(self, other: Served) -> None:
        # Spelled out, not a loop over names: this runs per rollup group on every console page.
        self.requests += other.requests
        self.aborted += other.aborted
        self.failed += other.failed
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.completion_tokens += other.completion_tokens
        # zip, not histograms.merge, for the same reason (strict: the same buckets on both sides)
        self.ttft = [mine + theirs for mine, theirs in zip(self.ttft, other.ttft, strict=True)]
        self.duration = [mine + theirs for mine, theirs in zip(self.duration, other.duration, strict=True)]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def add_served(into: dict[str, Served], model: str, served: Served) -> None:
    """Count `served` (a fresh value, kept rather than copied) under `model` in `into`."""
    known = into.get(model)
    if known is None:
        into[model] = served
    else:
        known.add(served)


def clip(
    interval: IntervalRecord, start: datetime, end: datetime, as_of: datetime
) -> tuple[datetime, datetime]:
    """The part of `interval` inside [start, end) (empty when until <= since); an open interval runs
    until `as_of`."""
    since = max(start, interval.started_at)
    return since, min(end, interval.ended_at or as_of)


def gpu_spend(
    intervals: Iterable[IntervalRecord],
    book: CostBook,
    currency: str,
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> dict[str, GpuSpend]:
    """GPU time and exact cost per model: every interval clipped to [start, end), cut where its GPU
    product's cost changes, each piece at the cost then in force."""
    spend: dict[str, GpuSpend] = {}
    for interval in intervals:
        into = spend.setdefault(interval.model, GpuSpend())
        since, until = clip(interval, start, end, as_of)
        if until <= since:
            continue
        for piece_start, piece_end, cost in book.segments(interval.gpu_product, since, until):
            piece = micros(piece_end - piece_start) * interval.gpus
            into.gpu_micros += piece
            if cost is None or cost.currency != currency:
                into.uncosted_micros += piece
            else:
                into.cost += span_cost(cost.per_hour, piece)
    return spend


def add_busy(
    spend: dict[str, GpuSpend],
    busy: Iterable[tuple[str, str, int]],
    gpus_of: Mapping[tuple[str, str], int],
) -> None:
    """Busy GPU time per model from (model, replica, minute bitmap) rollups, capped at its GPU time
    (a minute map may reach past an interval's clipped edge)."""
    for model, replica, bits in busy:
        gpus = gpus_of.get((model, replica))
        if gpus is None:
            continue  # usage on a replica the capacity ledger never saw: no GPU time to be busy in
        into = spend.setdefault(model, GpuSpend())
        into.busy_micros += busy_minutes(bits) * MICROS_PER_MINUTE * gpus
    for into in spend.values():
        into.busy_micros = min(into.busy_micros, into.gpu_micros)


def model_revenue(invoices: Iterable[Invoice], currency: str) -> dict[str, Decimal]:
    """The sum of the invoice lines of each model in `currency` (rounded lines, as billed)."""
    revenue: dict[str, Decimal] = {}
    for invoice in invoices:
        for line in invoice.lines:
            if line.currency == currency:
                revenue[line.model] = revenue.get(line.model, Decimal(0)) + line.amount
    return revenue


class Economics(Record):
    """One model's (or, as model "*", every model's) economics over a range."""

    model: str
    currency: str
    gpu_hours: Decimal
    uncosted_gpu_hours: Decimal
    gpu_cost: Decimal
    requests: int
    failed: int
    aborted: int
    prompt_tokens: int
    completion_tokens: int
    tokens_served: int
    cost_per_1m_tokens: Decimal | None
    revenue: Decimal
    margin: Decimal
    tokens_per_second_per_gpu: Decimal | None
    idle_share: Decimal | None
    ttft_p50_ms: Decimal | None
    ttft_p95_ms: Decimal | None
    duration_p50_ms: Decimal | None
    duration_p95_ms: Decimal | None
    error_rate: Decimal | None


def latency(counts: Sequence[int], q: str) -> Decimal | None:
    value = quantile(counts, Decimal(q))
    return None if value is None else value.quantize(LATENCY, rounding=ROUND_HALF_UP)


def error_rate(served: Served) -> Decimal | None:
    return None if served.requests == 0 else _rate(Decimal(served.failed) / served.requests)


def economics(
    model: str, currency: str, spend: GpuSpend, served: Served, revenue: Decimal, gpu_cost: Decimal
) -> Economics:
    """The derived numbers of one model; `gpu_cost` is `spend.cost` as rounded for display."""
    tokens = served.tokens
    gpu_seconds = Decimal(spend.gpu_micros) / 1_000_000
    return Economics(
        model=model,
        currency=currency,
        gpu_hours=_rate(gpu_hours(spend.gpu_micros)),
        uncosted_gpu_hours=_rate(gpu_hours(spend.uncosted_micros)),
        gpu_cost=gpu_cost,
        requests=served.requests,
        failed=served.failed,
        aborted=served.aborted,
        prompt_tokens=served.prompt_tokens,
        completion_tokens=served.completion_tokens,
        tokens_served=tokens,
        cost_per_1m_tokens=None if tokens == 0 else _rate(spend.cost * 1_000_000 / tokens),
        revenue=revenue,
        margin=revenue - gpu_cost,
        tokens_per_second_per_gpu=None if not spend.gpu_micros else _rate(tokens / gpu_seconds),
        idle_share=None
        if not spend.gpu_micros
        else _rate(Decimal(spend.gpu_micros - spend.busy_micros) / spend.gpu_micros),
        ttft_p50_ms=latency(served.ttft, "0.5"),
        ttft_p95_ms=latency(served.ttft, "0.95"),
        duration_p50_ms=latency(served.duration, "0.5"),
        duration_p95_ms=latency(served.duration, "0.95"),
        error_rate=error_rate(served),
    )


def report_rows(
    currency: str,
    spend: Mapping[str, GpuSpend],
    served: Mapping[str, Served],
    revenue: Mapping[str, Decimal],
) -> tuple[list[Economics], Economics]:
    """One row per model seen in any input, and the total over all of them (its cost and revenue
    are sums of the rounded model figures, so the rows add up as printed)."""
    rows, total_spend, total_served = [], GpuSpend(), Served()
    total_cost, total_revenue = Decimal(0), Decimal(0)
    for model in sorted({*spend, *served, *revenue}):
        model_spend, model_served = spend.get(model, GpuSpend()), served.get(model, Served())
        cost = round_money(model_spend.cost, currency)
        earned = revenue.get(model, Decimal(0))
        rows.append(economics(model, currency, model_spend, model_served, earned, cost))
        for name in ("gpu_micros", "uncosted_micros", "cost", "busy_micros"):
            setattr(total_spend, name, getattr(total_spend, name) + getattr(model_spend, name))
        total_served.add(model_served)
        total_cost, total_revenue = total_cost + cost, total_revenue + earned
    zero = round_money(Decimal(0), currency)
    total = economics(
        ALL_MODELS, currency, total_spend, total_served, total_revenue + zero, total_cost + zero
    )
    return rows, total
