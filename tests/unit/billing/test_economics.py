"""Unit economics, GPU cost books, histograms and busy minutes: hand-computed cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from modelplex.billing.busy import busy_minutes, busy_rows, minute_bits
from modelplex.billing.capacity import IntervalRecord
from modelplex.billing.cost_book import CostBook, CostRecord
from modelplex.billing.economics import Served, add_busy, gpu_spend, report_rows
from modelplex.billing.histograms import BOUNDS_MS, histogram, merge, quantile

H100 = "NVIDIA-H100-80GB-HBM3"
DAY = datetime(2026, 3, 10, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


def cost(per_hour: str, since: datetime, *, product: str = H100, currency: str = "USD") -> CostRecord:
    return CostRecord(
        id=int(since.timestamp()),
        gpu_product=product,
        currency=currency,
        per_hour=Decimal(per_hour),
        effective_from=since,
        source="test",
        created_at=since,
    )


def interval(
    start: datetime, end: datetime | None, *, gpus: int = 1, model: str = "m1", replica: str = "m1-0"
) -> IntervalRecord:
    return IntervalRecord(
        source="kubernetes",
        namespace="default",
        deployment=model,
        model=model,
        replica=replica,
        gpus=gpus,
        gpu_product=H100,
        started_at=start,
        last_seen_at=end or start,
        ended_at=end,
    )


def served(prompt: int, completion: int, requests: int = 1, failed: int = 0) -> Served:
    return Served(requests=requests, failed=failed, prompt_tokens=prompt, completion_tokens=completion)


def test_gpu_hours_and_cost_per_million_tokens_by_hand() -> None:
    # 2 GPUs from 10:00 to 13:30 = 7 GPU-hours at 2.49 = 17.43; 3M tokens: 5.81 per 1M tokens
    book = CostBook([cost("2.49", at(0))])
    spend = gpu_spend([interval(at(10), at(13, 30), gpus=2)], book, "USD", at(0), at(24), at(24))
    rows, total = report_rows("USD", spend, {"m1": served(2_000_000, 1_000_000)}, {"m1": Decimal("30.00")})
    assert rows[0].gpu_hours == Decimal("7")
    assert rows[0].gpu_cost == Decimal("17.43")
    assert rows[0].tokens_served == 3_000_000
    assert rows[0].cost_per_1m_tokens == Decimal("5.81")
    assert rows[0].margin == Decimal("12.57")
    # 3M tokens over 7 x 3600 GPU-seconds
    assert rows[0].tokens_per_second_per_gpu == Decimal("119.047619")
    assert total.gpu_cost == Decimal("17.43")
    assert total.model == "*"


def test_a_cost_change_mid_interval_prices_each_side_at_its_own_cost() -> None:
    book = CostBook([cost("2.00", at(0)), cost("3.00", at(12))])
    spend = gpu_spend([interval(at(11), at(13))], book, "USD", at(0), at(24), at(24))
    assert spend["m1"].cost == Decimal("5.00")
    assert spend["m1"].gpu_micros == 2 * 3600 * 1_000_000


def test_intervals_straddling_the_period_are_clipped_and_open_ones_run_to_now() -> None:
    book = CostBook([cost("1.00", datetime(2026, 1, 1, tzinfo=UTC))])
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    straddling = [
        interval(start - timedelta(hours=5), start + timedelta(hours=2)),  # 2 h inside
        interval(end - timedelta(hours=1), end + timedelta(hours=9), replica="m1-1"),  # 1 h inside
        interval(end - timedelta(hours=30), None, replica="m1-2"),  # open: until as_of, 6 h
        interval(start - timedelta(days=3), start - timedelta(days=2), replica="m1-3"),  # outside
    ]
    spend = gpu_spend(straddling, book, "USD", start, end, as_of=end - timedelta(hours=24))
    assert spend["m1"].gpu_micros == 9 * 3600 * 1_000_000
    assert spend["m1"].cost == Decimal("9")


def test_gpu_time_without_a_cost_in_the_currency_is_counted_apart() -> None:
    book = CostBook([cost("2.00", at(12)), cost("1.00", at(0), product="other", currency="EUR")])
    spend = gpu_spend([interval(at(11), at(13))], book, "USD", at(0), at(24), at(24))
    assert spend["m1"].uncosted_micros == 3600 * 1_000_000  # 11:00-12:00, before the first cost
    assert spend["m1"].cost == Decimal("2.00")


def test_idle_share_from_busy_minutes() -> None:
    book = CostBook([cost("1.00", at(0))])
    spend = gpu_spend([interval(at(10), at(11), gpus=2)], book, "USD", at(0), at(24), at(24))
    quarter = sum(1 << minute for minute in range(15))
    add_busy(spend, [("m1", "m1-0", quarter), ("m1", "unknown-replica", quarter)], {("m1", "m1-0"): 2})
    rows, _ = report_rows("USD", spend, {}, {})
    assert rows[0].idle_share == Decimal("0.75")


def test_busy_minutes_cover_every_minute_a_request_touches_across_hours() -> None:
    bits = minute_bits(at(10, 59) + timedelta(seconds=30), at(11, 1) + timedelta(seconds=10))
    assert bits == {at(10): 1 << 59, at(11): 0b11}
    rows = busy_rows(
        [
            {"model": "m1", "replica": "r", "started_at": at(10, 5), "finished_at": at(10, 6)},
            {"model": "m1", "replica": "r", "started_at": at(10, 5), "finished_at": at(10, 5)},
            {"model": "m1", "replica": "", "started_at": at(10, 30), "finished_at": at(10, 40)},
        ]
    )
    assert rows == [{"model": "m1", "replica": "r", "hour": at(10), "busy_minutes": 0b11 << 5}]
    assert busy_minutes(rows[0]["busy_minutes"]) == 2


def test_histogram_quantiles_interpolate_within_their_bucket() -> None:
    counts = histogram([10, 60, 60, 300])  # buckets (0,50] (50,100] (100,250] (250,500]
    assert counts[:4] == [1, 2, 0, 1]
    assert quantile(counts, Decimal("0.5")) == Decimal(75)  # rank 2: halfway into (50,100]
    assert quantile(counts, Decimal("0.95")) == Decimal(450)  # rank 3.8: 80 % into (250,500]
    assert quantile(histogram([50]), Decimal(1)) == Decimal(50)  # upper bounds are inclusive
    assert quantile(histogram([10**6]), Decimal("0.5")) == Decimal(BOUNDS_MS[-1])
    assert quantile(histogram([]), Decimal("0.5")) is None


def test_histograms_add_bucket_by_bucket() -> None:
    assert merge([histogram([10, 600]), histogram([20])]) == histogram([10, 20, 600])
    with pytest.raises(ValueError, match="buckets"):
        merge([[1, 2]])
    with pytest.raises(ValueError, match="quantile"):
        quantile(histogram([1]), Decimal(0))
