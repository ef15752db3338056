"""Chart payloads: the JSON a page embeds for static/console.js to draw with uPlot; pure.

A payload is columns, as uPlot takes them: `x` in Unix seconds, one list of values per series.
Days without usage are filled with zeros so a bar chart shows the gap rather than hiding it; a line
over time from Prometheus has null where nothing was measured (a gap, not a zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from modelplex.billing.periods import Period
from modelplex.billing.usage import DayUsage

Kind = Literal["bars", "steps", "lines"]


def chart(
    title: str, kind: Kind, x: Sequence[datetime], series: dict[str, Sequence[float]]
) -> dict[str, Any]:
    return {
        "title": title,
        "kind": kind,
        "x": [int(moment.timestamp()) for moment in x],
        "series": [{"label": label, "values": list(values)} for label, values in series.items()],
    }


def period_days(period: Period, until: datetime) -> list[datetime]:
    """Every UTC day of `period` that has begun by `until` (at least the first)."""
    days: list[datetime] = []
    day = period.start
    while day < period.end and (day <= until or not days):
        days.append(day)
        day += timedelta(days=1)
    return days


def usage_chart(days: Sequence[DayUsage], period: Period, now: datetime) -> dict[str, Any]:
    """Tokens per day: prompt (of it cached) and completion."""
    by_day = {row.day: row for row in days}
    axis = period_days(period, now)
    rows = [by_day.get(day, DayUsage(day=day)) for day in axis]
    return chart(
        "Tokens per day",
        "bars",
        axis,
        {
            "prompt tokens": [row.prompt_tokens for row in rows],
            "completion tokens": [row.completion_tokens for row in rows],
        },
    )


def replicas_chart(
    steps: Sequence[tuple[datetime, int]],
    until: datetime,
    decisions: Sequence[tuple[datetime, int]] = (),
) -> dict[str, Any]:
    """Serving replicas over time, as a step line ending at `until`, with the autoscaler's decisions
    (moment, replicas it asked for) marked where they were made."""
    wanted = {moment: replicas for moment, replicas in decisions if moment <= until}
    serving = dict(steps)
    moments = sorted({*serving, *wanted} | ({until} if steps or wanted else set()))
    counts: list[int] = []
    for moment in moments:  # a decision's moment between steps carries the count before it
        counts.append(serving.get(moment, counts[-1] if counts else 0))
    payload = chart("Serving replicas", "steps", moments, {"replicas": counts})
    if wanted:
        marks = [wanted.get(moment) for moment in moments]
        payload["series"].append({"label": "autoscaler asked for", "values": marks, "marks": True})
    return payload


def timeline_chart(
    title: str, series: dict[str, dict[float, float]], first: float, last: float, step: float
) -> dict[str, Any]:
    """Lines over the evaluation moments `first`, `first + step`, ... `last` (Unix seconds); each
    series maps a moment to its value, and a moment it lacks is drawn as a gap."""
    moments = [first + index * step for index in range(round((last - first) / step) + 1)]
    return {
        "title": title,
        "kind": "lines",
        "x": [round(moment) for moment in moments],
        "series": [
            {"label": label, "values": [values.get(moment) for moment in moments]}
            for label, values in series.items()
        ],
    }
