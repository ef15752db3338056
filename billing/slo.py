"""Service-level attainment per tenant, pure: from a period's hourly rollups and the tenant plan's SLO.

Availability is the share of requests that did not fail upstream (`failed`); an aborted request
(the client went away) counts as served. TTFT p95 is estimated from the fixed-bucket histogram
(`histograms.quantile`). An objective with no data (no requests, or none with a first token) is
neither met nor missed: None.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from modelplex.billing.economics import Served, error_rate, latency
from modelplex.billing.schemas import Record

PERCENT = Decimal("0.0001")


class Objectives(Record):
    ttft_p95_ms: int | None = None
    availability_percent: Decimal | None = None


class Quality(Record):
    """Error rate and TTFT of one tenant on one model (or on all, as model "*")."""

    model: str
    requests: int
    failed: int
    aborted: int
    error_rate: Decimal | None
    availability_percent: Decimal | None
    ttft_p50_ms: Decimal | None
    ttft_p95_ms: Decimal | None


class Attainment(Record):
    tenant_id: str
    tenant: str
    start: datetime
    end: datetime
    objectives: Objectives
    overall: Quality
    ttft_met: bool | None
    availability_met: bool | None
    met: bool | None  # every stated objective with data was met; None when none could be judged
    models: list[Quality]  # per model, sorted; empty when not asked for (`per_model=False`)


def quality(model: str, served: Served) -> Quality:
    available = (
        None
        if served.requests == 0
        else (Decimal(100) * (served.requests - served.failed) / served.requests).quantize(
            PERCENT, rounding=ROUND_HALF_UP
        )
    )
    return Quality(
        model=model,
        requests=served.requests,
        failed=served.failed,
        aborted=served.aborted,
        error_rate=error_rate(served),
        availability_percent=available,
        ttft_p50_ms=latency(served.ttft, "0.5"),
        ttft_p95_ms=latency(served.ttft, "0.95"),
    )


def _met(value: Decimal | None, target: Decimal | None, *, at_most: bool) -> bool | None:
    if value is None or target is None:
        return None
    return value <= target if at_most else value >= target


def attainment(
    tenant_id: str,
    tenant: str,
    start: datetime,
    end: datetime,
    by_model: Mapping[str, Served],
    objectives: Objectives,
    *,
    per_model: bool = True,
) -> Attainment:
    """How `tenant` fared against `objectives` over [start, end), overall and (unless `per_model` is
    False: a page listing many tenants needs only the overall standing) per model."""
    overall = Served()
    for served in by_model.values():
        overall.add(served)
    total = quality("*", overall)
    target_ttft = None if objectives.ttft_p95_ms is None else Decimal(objectives.ttft_p95_ms)
    ttft_met = _met(total.ttft_p95_ms, target_ttft, at_most=True)
    available_met = _met(total.availability_percent, objectives.availability_percent, at_most=False)
    judged = [verdict for verdict in (ttft_met, available_met) if verdict is not None]
    return Attainment(
        tenant_id=tenant_id,
        tenant=tenant,
        start=start,
        end=end,
        objectives=objectives,
        overall=total,
        ttft_met=ttft_met,
        availability_met=available_met,
        met=all(judged) if judged else None,
        models=[quality(model, by_model[model]) for model in sorted(by_model)] if per_model else [],
    )
