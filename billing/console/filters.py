"""The console's URL filters (`?period=YYYY-MM&tenant=NAME`), read into values or a named error; pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from modelplex.billing.errors import InvalidInput
from modelplex.billing.periods import Period, month_of, parse_period
from modelplex.billing.tenants import check_name

KNOWN = ("period", "tenant")


@dataclass(frozen=True)
class Filters:
    period: Period
    tenant: str | None = None

    def query(self, **changes: str | None) -> str:
        """This view's query string with `changes` applied (None drops a filter)."""
        values: dict[str, str | None] = {"period": self.period.label, "tenant": self.tenant, **changes}
        return urlencode({name: value for name, value in values.items() if value})


def read_filters(params: list[tuple[str, str]], now: datetime) -> Filters:
    """Filters from a query string's pairs; InvalidInput naming the parameter at fault."""
    seen: dict[str, str] = {}
    for name, value in params:
        if name not in KNOWN:
            raise InvalidInput(f"unknown filter {name!r}: use period (YYYY-MM) or tenant", param=name)
        if name in seen:
            raise InvalidInput(f"give {name} once", param=name)
        seen[name] = value
    period = parse_period(seen["period"]) if seen.get("period") else month_of(now)
    tenant = seen.get("tenant") or None
    return Filters(period=period, tenant=None if tenant is None else check_name(tenant, param="tenant"))


def previous_month(period: Period) -> str:
    return month_of(period.start - timedelta(days=1)).label


def next_month(period: Period) -> str:
    return month_of(period.end).label
