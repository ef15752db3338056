"""Replica busy time, pure: which minutes of each hour had a request in flight on a replica.

A request in flight over [started_at, finished_at] marks every minute it touches, as one bit of a
60-bit map per (model, replica, UTC hour). Maps merge with bitwise OR, so batches apply in any
order and a replayed event changes nothing; a minute is busy however many requests overlapped in
it. The resolution is one minute: a one-second request marks its whole minute busy, so idle time is
under-counted by at most a minute per burst (documented in docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from modelplex.billing.periods import HOUR, as_utc, hour_of

MAX_HOURS_PER_REQUEST = 48  # a request claiming to run longer is clipped (no engine request does)


def minute_bits(start: datetime, end: datetime) -> dict[datetime, int]:
    """The minutes [start, end] touches, as one bitmap per UTC hour."""
    start, end = as_utc(start), as_utc(end)
    end = min(max(end, start), start + MAX_HOURS_PER_REQUEST * HOUR)
    maps: dict[datetime, int] = {}
    hour = hour_of(start)
    while hour <= end:
        first = max(start, hour)
        last = min(end, hour + HOUR - timedelta(microseconds=1))
        bits = 0
        for minute in range(first.minute, last.minute + 1):
            bits |= 1 << minute
        maps[hour] = bits
        hour += HOUR
    return maps


def busy_rows(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Busy-minute maps of event rows that reached a replica, merged per (model, replica, hour)."""
    merged: dict[tuple[str, str, datetime], int] = {}
    for event in events:
        if not event["replica"]:
            continue  # never dispatched: nothing was in flight on any replica
        for hour, bits in minute_bits(event["started_at"], event["finished_at"]).items():
            key = (event["model"], event["replica"], hour)
            merged[key] = merged.get(key, 0) | bits
    return [
        {"model": model, "replica": replica, "hour": hour, "busy_minutes": bits}
        for (model, replica, hour), bits in sorted(merged.items())
    ]


def busy_minutes(bits: int) -> int:
    return bin(bits).count("1")
