"""Calendar periods (UTC months) and time helpers shared by usage queries and invoices."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from modelplex.billing.errors import InvalidInput

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
# Instants the ledger accepts: arithmetic on them (the next month, hour or day) stays within datetime's
# range, and both databases store them.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


class Period(BaseModel):
    """A calendar month in UTC: [start, end)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    start: datetime
    end: datetime


def parse_period(text: str, *, param: str = "period") -> Period:
    """`YYYY-MM` as a Period; InvalidInput naming `param` for anything else."""
    match = _PERIOD.match(text.strip())
    year, month = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not 1 <= month <= 12 or not EARLIEST.year <= year < LATEST.year:
        raise InvalidInput(f"{text!r} is not a calendar month in the form YYYY-MM", param=param)
    return month_of(datetime(year, month, 1, tzinfo=UTC))


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


def month_start(moment: datetime) -> datetime:
    return month_of(moment).start


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_instant(text: str, *, param: str) -> datetime:
    """An ISO 8601 date or date-time (UTC when no offset is given); InvalidInput naming `param`."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO 8601 date or date-time", param=param) from None
    try:
        return storable_instant(parsed)
    except ValueError as error:
        raise InvalidInput(f"{text!r} {error}", param=param) from None


def storable_instant(moment: datetime) -> datetime:
    """`moment` in UTC when it lies within [EARLIEST, LATEST); ValueError otherwise."""
    try:
        utc = as_utc(moment)
    except OverflowError:  # an offset that moves the moment out of datetime's range
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"is out of range: instants from {EARLIEST.year} to {LATEST.year - 1} are accepted")
    return utc


Instant = Annotated[datetime, AfterValidator(storable_instant)]
"""A request field holding an instant the ledger accepts (see storable_instant)."""


HOUR = timedelta(hours=1)
