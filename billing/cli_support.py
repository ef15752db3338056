"""What the ledger's CLI commands share: opening the ledger, printing, errors naming the option."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from modelplex.billing.errors import LedgerError
from modelplex.billing.ledger import Ledger, opened
from modelplex.billing.periods import parse_instant
from modelplex.billing.schemas import Record
from modelplex.billing.settings import BillingSettings

T = TypeVar("T")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")

# API field names as the CLI's options spell them
_OPTIONS = {
    "inputPer1M": "--input",
    "cachedInputPer1M": "--cached-input",
    "outputPer1M": "--output",
    "currency": "--currency",
    "effectiveFrom": "--effective-from",
    "expiresAt": "--expires",
    "period": "--period",
    "gpuProduct": "--gpu-product",
    "perHour": "--per-hour",
    "tenant": "--tenant",
    "model": "--model",
    "plan": "--plan",
    "monthlySpendBudget": "--monthly-spend",
    "sloAvailabilityPercent": "--slo-availability",
    "start": "--since",
    "end": "--until",
    "name": "NAME",
    "key": "KEY",
}


def fail(error: LedgerError) -> click.ClickException:
    where = _OPTIONS.get(error.param or "", error.param)
    return click.ClickException(f"{where}: {error.message}" if where else error.message)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def print_records(records: Sequence[Record], columns: Sequence[str], as_json: bool) -> None:
    rows = [record.to_json() for record in records]
    if as_json:
        print_json(rows)
        return
    table = [[_cell(row.get(column)) for column in columns] for row in rows]
    print_table([column.upper() for column in columns], table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "-"
    return str(value)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        click.echo(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def run(action: Callable[[Ledger], Awaitable[T]]) -> T:
    """Open the ledger, run `action`, close it; ledger errors become CLI errors naming the option."""

    async def main() -> T:
        async with opened(BillingSettings()) as ledger:
            return await action(ledger)

    try:
        return asyncio.run(main())
    except LedgerError as error:
        raise fail(error) from None


def instant(value: str | None, param: str) -> datetime | None:
    """An ISO 8601 option value, or None when the option was not given."""
    try:
        return None if value is None else parse_instant(value, param=param)
    except LedgerError as error:
        raise fail(error) from None
