"""Calendar periods (UTC months) and time helpers shared by usage queries and invoices."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from modelplex.billing.errors import InvalidInput

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class Period(BaseModel):
    """A calendar month in UTC: [start, end)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    start: datetime
    end: datetime


def parse_period(text: str, *, param: str = "period") -> Period:
    """`YYYY-MM` as a Period; InvalidInput naming `param` for anything else."""
    match = _PERIOD.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise InvalidInput(f"{text!r} is not a calendar month in the form YYYY-MM", param=param)
    return month_of(datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC))


def month_of(moment: datetime) -> Period:
    """The calendar month (UTC) that contains `moment`."""
    at = as_utc(moment)
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + 1, 1, 1, tzinfo=UTC) if at.month == 12 else start.replace(month=at.month + 1)
    return Period(label=f"{at.year:04d}-{at.month:02d}", start=start, end=end)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; naive values are taken to be UTC already (SQLite returns them that way)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def hour_of(moment: datetime) -> datetime:
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    return as_utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_instant(text: str, *, param: str) -> datetime:
    """An ISO 8601 date or date-time (UTC when no offset is given); InvalidInput naming `param`."""
    try:
        return as_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO 8601 date or date-time", param=param) from None


HOUR = timedelta(hours=1)
