"""Invoice export: JSON (decimal strings, lowerCamel) and CSV (one row per line, then totals)."""

from __future__ import annotations

import csv
import io
from typing import Any

from modelplex.billing.invoices import Invoice, InvoiceLine

CSV_COLUMNS = (
    "model",
    "price_id",
    "segment_start",
    "segment_end",
    "currency",
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "input_per_1m",
    "cached_input_per_1m",
    "output_per_1m",
    "amount",
)


def invoice_json(invoice: Invoice) -> dict[str, Any]:
    return invoice.to_json()


def _cells(line: InvoiceLine) -> list[str]:
    values = line.model_dump(mode="json", by_alias=False)
    return ["" if values[column] is None else str(values[column]) for column in CSV_COLUMNS]


def invoice_csv(invoice: Invoice) -> str:
    """Lines, then one `TOTAL` row per currency; amounts are exact decimal strings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["tenant", "period", *CSV_COLUMNS])
    for line in invoice.lines:
        writer.writerow([invoice.tenant, invoice.period, *_cells(line)])
    for currency, total in sorted(invoice.totals.items()):
        blanks = [""] * (len(CSV_COLUMNS) - 6)  # between currency and amount
        writer.writerow([invoice.tenant, invoice.period, "TOTAL", "", "", "", currency, *blanks, str(total)])
    return buffer.getvalue()
