"""Templates (Jinja2, autoescaped) and the filters that format the ledger's numbers for people."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from modelplex.billing.currencies import MINOR_UNITS

HERE = Path(__file__).parent
NONE = "\N{EN DASH}"  # shown for a value that does not exist (no data, no limit)


def count(value: int | None) -> str:
    return NONE if value is None else f"{value:,}"


def money(value: Decimal | None, currency: str = "") -> str:
    """Exact, as the ledger keeps it (amounts are already rounded to the currency's minor unit), with
    separators; padded to the minor unit (0 USD shows as 0.00 USD), never rounded."""
    if value is None:
        return NONE
    minor = MINOR_UNITS.get(currency, 2)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < minor:
        value = value.quantize(Decimal(1).scaleb(-minor))
    return f"{value:,} {currency}".strip()


def rate(value: Decimal | None, currency: str = "") -> str:
    """A derived rate (cost per 1M tokens): to 4 decimal places, which is display, not billing."""
    return NONE if value is None else f"{value:,.4f} {currency}".strip()


def decimal(value: Decimal | None, places: int = 2) -> str:
    return NONE if value is None else f"{value:,.{places}f}"


def share(value: Decimal | float | None) -> str:
    """A 0..1 share as a percentage."""
    return NONE if value is None else f"{value * 100:.1f} %"


def milliseconds(value: Decimal | int | None) -> str:
    return NONE if value is None else f"{Decimal(value):,.0f} ms"


def when(value: datetime | None) -> str:
    return NONE if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        count=count, money=money, rate=rate, decimal=decimal, share=share, ms=milliseconds, when=when
    )
    return env


class Pages:
    """Renders a template by name with the values every page has (viewer, filters, CSRF token)."""

    def __init__(self) -> None:
        self._env = environment()

    def render(self, name: str, **values: Any) -> str:
        return self._env.get_template(name).render(**values)
