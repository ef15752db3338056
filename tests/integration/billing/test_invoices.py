"""Invoices on both databases: price segments, rounding, currencies, exports (hand-computed totals)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from modelplex.billing import price_history, statements, tenants
from modelplex.billing.errors import InvalidInput, NotFound
from modelplex.billing.export import invoice_csv
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import Ledger
from modelplex.billing.price_history import PriceTerms
from mpxtest.ledger import usage_event

pytestmark = pytest.mark.anyio


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


async def _price(ledger: Ledger, model: str, when: datetime, **amounts: str) -> None:
    await price_history.set_price(ledger, model, PriceTerms.model_validate(amounts), when)


async def _march(ledger: Ledger) -> str:
    """The scenario of the expected totals below; returns the tenant id."""
    tenant = await tenants.create_tenant(ledger, "acme")
    await _price(ledger, "m1", at(1, 0), inputPer1M="2.00", cachedInputPer1M="1.00", outputPer1M="8.00")
    await _price(ledger, "m1", at(16, 0), inputPer1M="3.00", cachedInputPer1M="1.50", outputPer1M="12.00")
    await _price(ledger, "m2", at(1, 0, month=2), inputPer1M="0.5", outputPer1M="1.5")
    await _price(ledger, "m4", at(1, 0), inputPer1M="1", outputPer1M="1", currency="EUR")
    t = tenant.id
    await LedgerSink(ledger).ingest(
        [
            usage_event(
                "r1", tenant_id=t, model="m1", at=at(10), prompt=150_000, cached=50_000, completion=40_000
            ),
            usage_event(
                "r2", tenant_id=t, model="m1", at=at(15, 23), prompt=150_000, cached=50_000, completion=40_000
            ),
            usage_event(
                "r3", tenant_id=t, model="m1", at=at(20), prompt=333_333, cached=0, completion=111_111
            ),
            usage_event(
                "r6", tenant_id=t, model="m1", at=at(16, 0), prompt=1_000_000, cached=0, completion=0
            ),
            usage_event(
                "r4", tenant_id=t, model="m2", at=at(5), prompt=1_000_000, cached=0, completion=1_000_000
            ),
            usage_event("r5", tenant_id=t, model="m3", at=at(6), prompt=10, cached=0, completion=10),
            usage_event("r7", tenant_id=t, model="m4", at=at(7), prompt=500_000, cached=0, completion=0),
            usage_event("r8", tenant_id=t, model="m1", at=at(1, 0, month=4), prompt=9_999, completion=9_999),
            usage_event(
                "other", tenant_id="tnt_other", model="m1", at=at(10), prompt=10**6, completion=10**6
            ),
        ]
    )
    return t


async def test_mid_period_price_change_splits_lines_with_hand_computed_totals(ledger: Ledger) -> None:
    await _march(ledger)
    invoice = await statements.build_invoice(ledger, "acme", "2026-03")

    lines = [(line.model, line.segment_start.day, line.requests, line.amount) for line in invoice.lines]
    # m1 at 2/1/8: 200,000 uncached * 2 + 100,000 cached * 1 + 80,000 out * 8, per 1M = 0.40 + 0.10 + 0.64
    # m1 at 3/1.5/12 (from the 16th, r6 starts exactly then): 1,333,333 * 3 + 111,111 * 12 = 5.333331
    # m2 at 0.5/1.5: 1M in + 1M out = 2.00; m3 has no price; m4 in EUR: 500,000 * 1 = 0.50
    assert lines == [
        ("m1", 1, 2, Decimal("1.14")),
        ("m1", 16, 2, Decimal("5.33")),
        ("m2", 1, 1, Decimal("2.00")),
        ("m3", 1, 1, Decimal("0")),
        ("m4", 1, 1, Decimal("0.50")),
    ]
    assert invoice.totals == {"USD": Decimal("8.47"), "EUR": Decimal("0.50")}
    assert invoice.unpriced_requests == 1
    first, second = invoice.lines[0], invoice.lines[1]
    assert (first.segment_start, first.segment_end) == (at(1, 0), at(16, 0))
    assert (second.segment_start, second.segment_end) == (at(16, 0), at(1, 0, month=4))
    assert (first.input_tokens, first.cached_input_tokens, first.output_tokens) == (200_000, 100_000, 80_000)
    assert second.output_per_1m == Decimal("12")


async def test_invoice_is_reproducible_and_exports_to_json_and_csv(ledger: Ledger) -> None:
    await _march(ledger)
    first = await statements.build_invoice(ledger, "acme", "2026-03")
    again = await statements.build_invoice(ledger, "acme", "2026-03")
    assert first == again

    body = first.to_json()
    assert body["totals"] == {"USD": "8.47", "EUR": "0.50"}
    assert body["lines"][0]["inputPer1M"] == "2"  # type: ignore[index]

    rows = list(csv.DictReader(io.StringIO(invoice_csv(first))))
    assert [row["amount"] for row in rows] == ["1.14", "5.33", "2.00", "0", "0.50", "0.50", "8.47"]
    assert [(row["model"], row["currency"]) for row in rows[-2:]] == [("TOTAL", "EUR"), ("TOTAL", "USD")]


async def test_next_month_holds_only_its_own_usage(ledger: Ledger) -> None:
    await _march(ledger)
    april = await statements.build_invoice(ledger, "acme", "2026-04")
    # r8: 9,999 in * 3 + 9,999 out * 12 per 1M = 0.149985 -> 0.15
    assert [(line.model, line.requests, line.amount) for line in april.lines] == [("m1", 1, Decimal("0.15"))]
    assert (await statements.build_invoice(ledger, "acme", "2026-05")).lines == []


async def test_invoice_rejects_unknown_tenant_and_malformed_period(ledger: Ledger) -> None:
    await tenants.create_tenant(ledger, "acme")
    with pytest.raises(NotFound) as unknown:
        await statements.build_invoice(ledger, "nobody", "2026-03")
    assert unknown.value.param == "tenant"
    for period in ("2026-3", "2026-13", "March", "2026-03-01"):
        with pytest.raises(InvalidInput) as bad:
            await statements.build_invoice(ledger, "acme", period)
        assert bad.value.param == "period"
