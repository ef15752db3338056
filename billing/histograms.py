"""Latency histograms, pure: fixed bucket bounds, counting, merging and quantiles.

The bounds never change (a migration would have to re-bucket history), so histograms of any hours,
tenants, models or replicas add bucket by bucket. Buckets are not cumulative: bucket i counts values
in (BOUNDS[i-1], BOUNDS[i]], the last one everything above the largest bound.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Literal

Metric = Literal["ttft", "duration"]
METRICS: tuple[Metric, ...] = ("ttft", "duration")
BOUNDS_MS: tuple[int, ...] = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
BUCKET_NAMES: tuple[str, ...] = (*(f"le_{bound}" for bound in BOUNDS_MS), "le_inf")


def column_name(metric: Metric, bucket: str) -> str:
    return f"{metric}_{bucket}"


HISTOGRAM_COLUMNS: tuple[str, ...] = tuple(
    column_name(metric, bucket) for metric in METRICS for bucket in BUCKET_NAMES
)
_COLUMNS_OF: dict[Metric, tuple[str, ...]] = {
    metric: tuple(column_name(metric, bucket) for bucket in BUCKET_NAMES) for metric in METRICS
}


def bucket_of(value_ms: float) -> int:
    """The index of the bucket that counts `value_ms` (upper bounds are inclusive)."""
    return bisect.bisect_left(BOUNDS_MS, value_ms)


def empty() -> list[int]:
    return [0] * len(BUCKET_NAMES)


def histogram(values_ms: Iterable[float]) -> list[int]:
    counts = empty()
    for value in values_ms:
        counts[bucket_of(value)] += 1
    return counts


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = empty()
    for counts in histograms:
        if len(counts) != len(total):
            raise ValueError(f"a histogram has {len(counts)} buckets, not {len(total)}")
        for index, count in enumerate(counts):
            total[index] += count
    return total


def from_row(row: Mapping[str, int], metric: Metric) -> list[int]:
    """The histogram of `metric` held in summed rollup columns (integers, never NULL: see
    `rollups.summed`)."""
    return [row[column] for column in _COLUMNS_OF[metric]]


def quantile(counts: Sequence[int], q: Decimal) -> Decimal | None:
    """The q-quantile (0 < q <= 1) estimated as Prometheus' histogram_quantile does: linear within the
    bucket it falls in (the first bucket starts at 0); in the open last bucket, the largest bound.
    None for an empty histogram. Exact decimals, so both databases give the same answer."""
    if not 0 < q <= 1:
        raise ValueError(f"a quantile must be in (0, 1], not {q}")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index == len(BOUNDS_MS):
                return Decimal(BOUNDS_MS[-1])
            lower = Decimal(0 if index == 0 else BOUNDS_MS[index - 1])
            upper = Decimal(BOUNDS_MS[index])
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return Decimal(BOUNDS_MS[-1])  # unreachable: rank <= total
