"""Pure invoice computation over usage totals and a price book (hand-computed expectations)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

from modelplex.billing.export import CSV_COLUMNS, invoice_csv
from modelplex.billing.invoices import UsageTotal, compute_invoice, spend
from modelplex.billing.periods import parse_period
from modelplex.billing.pricing import PriceBook, PriceRecord

MARCH = parse_period("2026-03")


def price(id_: int, start: datetime, input_: str, output: str, currency: str = "USD") -> PriceRecord:
    return PriceRecord(
        id=id_,
        model="m",
        currency=currency,
        input_per_1m=Decimal(input_),
        cached_input_per_1m=Decimal(input_),
        output_per_1m=Decimal(output),
        effective_from=start,
        source="test",
        created_at=start,
    )


def total(price_id: int, prompt: int, completion: int, cached: int = 0) -> UsageTotal:
    return UsageTotal(
        model="m",
        price_id=price_id,
        requests=1,
        aborted=0,
        failed=0,
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
    )


BOOK = PriceBook(
    [
        price(1, datetime(2026, 1, 1, tzinfo=UTC), "1.25", "5"),
        price(2, datetime(2026, 3, 20, 6, tzinfo=UTC), "1", "4"),
    ]
)


def test_lines_follow_price_segments_clipped_to_the_period() -> None:
    invoice = compute_invoice("tnt_1", "acme", MARCH, [total(2, 10**6, 10**6), total(1, 10**6, 3)], BOOK)
    first, second = invoice.lines
    assert (first.price_id, first.segment_start, first.segment_end) == (
        1,
        MARCH.start,
        BOOK.by_id[2].effective_from,
    )
    assert (second.price_id, second.segment_start, second.segment_end) == (
        2,
        BOOK.by_id[2].effective_from,
        MARCH.end,
    )
    # 1M * 1.25 + 3 * 5 / 1M = 1.250015 -> 1.25; 1M * 1 + 1M * 4 = 5.00
    assert [line.amount for line in invoice.lines] == [Decimal("1.25"), Decimal("5.00")]
    assert invoice.totals == {"USD": Decimal("6.25")}


def test_total_is_the_sum_of_rounded_lines() -> None:
    # each line: 3,333 * 1.25 / 1M = 0.00416625 -> 0.00; 4,000 * 1.25 / 1M = 0.005 -> 0.01 (half up)
    invoice = compute_invoice("t", "acme", MARCH, [total(1, 3_333, 0), total(2, 0, 1_250)], BOOK)
    assert [line.amount for line in invoice.lines] == [Decimal("0.00"), Decimal("0.01")]
    assert invoice.totals == {"USD": Decimal("0.01")}


def test_unpriced_usage_is_listed_at_zero_and_counted() -> None:
    invoice = compute_invoice("t", "acme", MARCH, [total(0, 10, 10)], BOOK)
    assert invoice.lines[0].price_id is None
    assert invoice.lines[0].amount == 0
    assert invoice.totals == {}
    assert invoice.unpriced_requests == 1


def test_spend_is_exact_and_per_currency() -> None:
    usage = [total(1, 3_333, 0), total(2, 0, 1_250)]
    assert spend(usage, BOOK, "USD") == Decimal("0.00916625")
    assert spend(usage, BOOK, "EUR") == 0


def test_csv_has_one_row_per_line_and_a_total_per_currency() -> None:
    invoice = compute_invoice("t", "acme", MARCH, [total(1, 10**6, 0)], BOOK)
    rows = list(csv.reader(io.StringIO(invoice_csv(invoice))))
    assert rows[0] == ["tenant", "period", *CSV_COLUMNS]
    assert all(len(row) == len(rows[0]) for row in rows)
    assert rows[1][CSV_COLUMNS.index("amount") + 2] == "1.25"
    assert rows[2][2] == "TOTAL"
    assert rows[2][-1] == "1.25"
    assert rows[2][6] == "USD"
