"""Economics on a seeded ledger, on SQLite and PostgreSQL: the report, its JSON over the admin API,
the invoices and sums over the raw usage rows agree to the token and the cent; GPU-hours and cost
equal a hand-computed case; latency quantiles equal the raw latencies bucketed."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from modelplex.billing import statements, tenants
from modelplex.billing.capacity import Observation, ReadyReplica, record_observation
from modelplex.billing.contracts import Outcome, UsageEvent
from modelplex.billing.currencies import round_money
from modelplex.billing.economics_report import economics_report
from modelplex.billing.gpu_costs import set_cost
from modelplex.billing.histograms import histogram, quantile
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import parse_period
from modelplex.billing.price_history import PriceTerms, price_book, set_price
from modelplex.billing.pricing import token_cost
from modelplex.billing.tables import UsageEventRow
from mpxtest.ledger import usage_event

pytestmark = pytest.mark.anyio
MARCH = parse_period("2026-03")
AS_OF = datetime(2026, 4, 2, tzinfo=UTC)
H100, L4 = "NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"


def when(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def ready(replica: str, model: str, gpus: int, product: str, since: datetime) -> ReadyReplica:
    return ReadyReplica(
        namespace="prod",
        deployment=model,
        model=model,
        replica=replica,
        gpus=gpus,
        gpu_product=product,
        ready_since=since,
    )


M1_READY = ready("m1-0", "m1", 2, H100, when(28, 20, month=2))
M2_READY = ready("m2-0", "m2", 1, L4, when(25, 9, 30))


def observe(at: datetime, *replicas: ReadyReplica) -> Observation:
    return Observation(source="kubernetes", observed_at=at, ready=list(replicas))


def events(tenant_ids: list[str]) -> list[UsageEvent]:
    """Usage from mid-February to mid-April: two tenants, two models, varied sizes and latencies."""
    made = []
    for index in range(240):
        model = "m1" if index % 3 else "m2"
        started = when(14, month=2) + timedelta(hours=7 * index, minutes=index % 60)
        event = usage_event(
            f"req-{index}",
            tenant_id=tenant_ids[index % 2],
            model=model,
            at=started,
            prompt=100 + 37 * index,
            cached=(11 * index) % 90,
            completion=13 * index + 1,
            outcome=Outcome.FAILED if index % 17 == 0 else Outcome.COMPLETED,
        )
        made.append(
            event.model_copy(
                update={
                    "replica": f"{model}-0",
                    "ttft_ms": None if index % 29 == 0 else float(20 + (index * 97) % 3000),
                    "duration_ms": float(300 + (index * 331) % 40000),
                    "finished_at": started + timedelta(seconds=(index * 13) % 200),
                }
            )
        )
    return made


async def seed(ledger: Ledger) -> None:
    await tenants.put_plan(
        ledger, tenants.PlanSpec(name="gold", slo_ttft_p95_ms=2000, slo_availability_percent="99.5")
    )
    acme = await tenants.create_tenant(ledger, "acme", plan="gold")
    beta = await tenants.create_tenant(ledger, "beta")
    for model, since, terms in [
        ("m1", when(1, month=2), {"input_per_1m": "2", "cached_input_per_1m": "1", "output_per_1m": "4"}),
        ("m1", when(15), {"input_per_1m": "3.3", "output_per_1m": "6.7"}),
        ("m2", when(1, month=2), {"input_per_1m": "0.5", "output_per_1m": "1.5"}),
    ]:
        await set_price(ledger, model, PriceTerms.model_validate(terms), since)
    await set_cost(ledger, H100, "2.49", effective_from=when(1, month=2))
    await set_cost(ledger, H100, "3.10", effective_from=when(20))
    await set_cost(ledger, L4, "0.80", effective_from=when(1, month=2))
    await record_observation(ledger, observe(when(28, 22, month=2), M1_READY))
    await record_observation(ledger, observe(when(25, 10), M1_READY, M2_READY))
    await record_observation(ledger, observe(when(25, 10, 1), M2_READY))  # m1-0 gone, watched: ends now
    await record_observation(ledger, observe(when(28, 22, month=2), M1_READY))  # a late replay
    sink, made = LedgerSink(ledger), events([acme.id, beta.id])
    for start in range(0, len(made), 50):
        await sink.ingest(made[start : start + 50])
    await sink.ingest(made[:50])  # the journal replays a batch: nothing changes


async def raw_rows(ledger: Ledger) -> list[UsageEventRow]:
    query = select(UsageEventRow).where(
        UsageEventRow.started_at >= MARCH.start, UsageEventRow.started_at < MARCH.end
    )
    async with ledger.sessions() as session:
        return list((await session.execute(query)).scalars())


async def revenue_from_raw(ledger: Ledger, rows: list[UsageEventRow]) -> dict[str, Decimal]:
    """Each (tenant, model, price) group of raw rows priced and rounded as an invoice line."""
    groups: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        assert row.price_id is not None
        sums = groups[(row.tenant_id, row.model, row.price_id)]
        for position, value in enumerate((row.prompt_tokens, row.cached_tokens, row.completion_tokens)):
            sums[position] += value
    async with ledger.sessions() as session:
        book = await price_book(session)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for (_, model, price_id), (prompt, cached, completion) in groups.items():
        revenue[model] += round_money(token_cost(book.by_id[price_id], prompt, cached, completion), "USD")
    return dict(revenue)


async def test_economics_agree_with_invoices_and_raw_rows(ledger: Ledger, admin: httpx.AsyncClient) -> None:
    await seed(ledger)
    report = await economics_report(ledger, MARCH, as_of=AS_OF)
    rows = await raw_rows(ledger)
    by_model = {row.model: row for row in report.models}
    assert sorted(by_model) == ["m1", "m2"]

    for model, economics in by_model.items():
        mine = [row for row in rows if row.model == model]
        assert economics.requests == len(mine)
        assert economics.failed == sum(row.outcome == "failed" for row in mine)
        assert economics.tokens_served == sum(row.prompt_tokens + row.completion_tokens for row in mine)
        ttft = histogram(row.ttft_ms for row in mine if row.ttft_ms is not None)
        assert economics.ttft_p95_ms == quantile(ttft, Decimal("0.95")).quantize(Decimal("0.001"))  # type: ignore[union-attr]
    assert report.total.tokens_served == sum(row.prompt_tokens + row.completion_tokens for row in rows)

    invoices = [await statements.build_invoice(ledger, name, "2026-03") for name in ("acme", "beta")]
    assert report.total.revenue == sum(invoice.totals["USD"] for invoice in invoices)
    raw_revenue = await revenue_from_raw(ledger, rows)
    assert {model: e.revenue for model, e in by_model.items()} == raw_revenue
    for model, economics in by_model.items():
        lines = [line.amount for invoice in invoices for line in invoice.lines if line.model == model]
        assert economics.revenue == sum(lines)
        assert economics.margin == economics.revenue - economics.gpu_cost

    # By hand: m1-0 (2 x H100) from 03-01 00:00 to 03-25 10:01: 456 h at 2.49, then 130 h 1 min at 3.10
    assert by_model["m1"].gpu_hours == Decimal("1172.033333")
    assert by_model["m1"].gpu_cost == Decimal("3076.98")  # 2270.88 + 806.1033...
    # m2-0 (1 x L4) from 03-25 09:30 to the end of March (still open): 158.5 h at 0.80
    assert by_model["m2"].gpu_hours == Decimal("158.5")
    assert by_model["m2"].gpu_cost == Decimal("126.80")
    assert report.total.gpu_cost == Decimal("3203.78")
    m1_tokens = by_model["m1"].tokens_served
    assert by_model["m1"].cost_per_1m_tokens == (
        (Decimal("2270.88") + Decimal("2") * Decimal("3.10") * (Decimal(130) + Decimal(1) / 60))
        * 1_000_000
        / m1_tokens
    ).quantize(Decimal("0.000001"))
    for economics in report.models:
        assert economics.idle_share is not None
        assert Decimal(0) < economics.idle_share < Decimal(1)

    served = (await admin.get("/admin/v1/economics", params={"period": "2026-03"})).json()
    expected = report.to_json()
    assert {key: served[key] for key in ("models", "total", "currency")} == {
        key: expected[key] for key in ("models", "total", "currency")
    }


async def test_slo_attainment_per_tenant(ledger: Ledger, admin: httpx.AsyncClient) -> None:
    await seed(ledger)
    rows = await raw_rows(ledger)
    response = await admin.get("/admin/v1/slo", params={"period": "2026-03"})
    assert response.status_code == 200
    attainment = {entry["tenant"]: entry for entry in response.json()["data"]}
    assert sorted(attainment) == ["acme", "beta"]
    acme_id = attainment["acme"]["tenantId"]
    mine = [row for row in rows if row.tenant_id == acme_id]
    failed = sum(row.outcome == "failed" for row in mine)
    overall: dict[str, Any] = attainment["acme"]["overall"]
    assert (overall["requests"], overall["failed"]) == (len(mine), failed)
    available = (Decimal(100) * (len(mine) - failed) / len(mine)).quantize(Decimal("0.0001"))
    assert Decimal(overall["availabilityPercent"]) == available
    assert attainment["acme"]["objectives"] == {"ttftP95Ms": 2000, "availabilityPercent": "99.5"}
    assert attainment["acme"]["availabilityMet"] is (available >= Decimal("99.5"))
    assert attainment["beta"]["met"] is None  # no plan, no objectives


async def test_economics_range_errors_name_the_parameter(admin: httpx.AsyncClient) -> None:
    for params, param in [
        ({"start": "2026-03-01T00:30:00"}, "start"),
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-03", "start": "2026-03-01"}, "period"),
        ({"currency": "XXX1"}, "currency"),
    ]:
        response = await admin.get("/admin/v1/economics", params=params)
        assert response.status_code in {400, 422}, response.text
        assert response.json()["error"]["param"] == param
