"""A model's queue depth and KV cache use over a period, from Prometheus' range queries, for the
model page's charts (`MODELPLEX_BILLING_PROMETHEUS_URL`). Without a URL, or when Prometheus cannot
answer or holds nothing for the model, the page says so in words instead of drawing an empty chart.

Each point covers one step (at most `MAX_POINTS` per period, at least `MIN_STEP_SECONDS` apart,
the last at the moment asked): the step's peak of the engines' waiting requests and of the requests
the gateways hold (`max_over_time`, summed over engines and gateways), and the engines' mean KV
cache use (`avg_over_time`, averaged over engines). vLLM labels its series `model_name`, the
gateway `model`.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelplex.billing.console.charts import timeline_chart
from modelplex.prometheus_api import PrometheusClient, PrometheusError, Series, label_literal

MAX_POINTS = 400
MIN_STEP_SECONDS = 15.0  # Prometheus' usual scrape interval


@dataclass(frozen=True)
class LoadHistory:
    charts: tuple[dict[str, Any], ...]  # empty when there is nothing to draw; `message` says why
    message: str = ""


def queries(model: str, step_seconds: float) -> dict[str, str]:
    """Series label -> PromQL, for one model (pure)."""
    engine = f"{{model_name={label_literal(model)}}}"
    gateway = f"{{model={label_literal(model)}}}"
    window = f"[{step_seconds:g}s]"
    return {
        "waiting in engines": f"sum(max_over_time(vllm:num_requests_waiting{engine}{window}))",
        "held by gateways": f"sum(max_over_time(modelplex_gateway_queue_depth{gateway}{window}))",
        "KV cache use": f"avg(avg_over_time(vllm:kv_cache_usage_perc{engine}{window}))",
    }


def steps(start: datetime, end: datetime) -> tuple[float, float, float]:
    """(first point, last point, step) in whole Unix seconds: the last point is `end` rounded up,
    so the newest measurement is drawn (pure)."""
    last = math.ceil(end.timestamp())
    span = max(0, last - math.ceil(start.timestamp()))
    step = max(MIN_STEP_SECONDS, float(math.ceil(span / MAX_POINTS)))
    return float(last - math.floor(span / step) * step), float(last), step


async def load_history(
    url: str | None, timeout_seconds: float, model: str, start: datetime, end: datetime
) -> LoadHistory:
    """The two charts of `model` between `start` and `end`, or why there are none."""
    if url is None:
        return LoadHistory(
            (),
            "No Prometheus is configured, so queue depth and KV cache use are shown as of the "
            "autoscaler's last reading only: set MODELPLEX_BILLING_PROMETHEUS_URL to draw them over time.",
        )
    if end <= start:
        return LoadHistory((), "This period has not begun: nothing to draw yet.")
    first, last, step = steps(start, end)
    wanted = queries(model, step)
    async with PrometheusClient(url, timeout_seconds) as client:
        answers = await asyncio.gather(
            *(client.query_range(expr, first, last, step) for expr in wanted.values()),
            return_exceptions=True,
        )
    found: dict[str, list[Series]] = {}
    for label, answer in zip(wanted, answers, strict=True):
        if isinstance(answer, PrometheusError):
            return LoadHistory((), f"Prometheus could not be read, so nothing is drawn: {answer}")
        if isinstance(answer, BaseException):
            raise answer
        found[label] = answer
    if not any(found.values()):
        return LoadHistory(
            (), f"Prometheus at {url} holds no queue or KV cache series of {model} in this period."
        )
    queue = {label: _points(found[label]) for label in ("waiting in engines", "held by gateways")}
    kv = {"KV cache use %": {moment: 100 * share for moment, share in _points(found["KV cache use"]).items()}}
    return LoadHistory(
        (
            timeline_chart("Queue depth (peak per step)", queue, first, last, step),
            timeline_chart("KV cache use, % (mean per step)", kv, first, last, step),
        )
    )


def _points(series: list[Series]) -> dict[float, float]:
    """The one series an aggregation without `by` gives (none when nothing matched)."""
    return {moment: value for one in series for moment, value in one.points if math.isfinite(value)}
