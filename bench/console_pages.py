"""Console page times on a big ledger: 10M usage events across 1,000 tenants (issue 14's target: each
page's server time p95 <= 300 ms).

    .venv/bin/python bench/console_pages.py [--events 10000000] [--tenants 1000] [--rounds 20] [--db PATH]

Seeds a migrated SQLite ledger (reused when --db names one already seeded): tenants on two plans, four
priced models, GPU costs, a replica interval per model, then the raw usage events generated inside
SQLite (a recursive CTE; tenants skewed so a few are heavy, as in real services) over the last 30
days, and the hourly, daily and monthly rollups built from those rows exactly as ingest would have
summed them. Then it signs in and asks each page `--rounds` times in process (the admin app over ASGI:
server time, no network) and prints p50/p95/max per page. A smaller `--events` seeds in proportion
less time (1M events: ~2.5 min) with the same rollup shape per day.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import sqlite3
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from modelplex.billing.api import build_admin_app
from modelplex.billing.capacity import Observation, ReadyReplica, record_observation
from modelplex.billing.gpu_costs import set_cost
from modelplex.billing.histograms import HISTOGRAM_COLUMNS
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import hour_of, month_of, utcnow
from modelplex.billing.price_history import PriceTerms, set_price
from modelplex.billing.rollups import COUNTS
from modelplex.billing.settings import BillingSettings
from modelplex.billing.tables import Price
from modelplex.billing.tenants import PlanSpec, create_tenant, put_plan

MODELS = ("llama-70b", "qwen-32b", "mistral-7b", "smollm2")
TOKEN = "bench-admin-token"
BOUNDS = ("50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000")


async def _accounts(ledger: Ledger, tenants: int) -> list[str]:
    await put_plan(ledger, PlanSpec(name="pro", monthly_spend_budget="500", slo_ttft_p95_ms=800))
    await put_plan(ledger, PlanSpec(name="free", monthly_token_budget=5_000_000))
    ids = []
    for index in range(tenants):
        record = await create_tenant(ledger, f"tenant-{index:04d}", "pro" if index % 3 == 0 else "free")
        ids.append(record.id)
    since = utcnow() - timedelta(days=40)
    for index, model in enumerate(MODELS):
        terms = {"inputPer1M": f"0.{index + 1}", "outputPer1M": f"0.{3 * (index + 1)}"}
        await set_price(ledger, model, PriceTerms.model_validate(terms), since)
    await set_cost(ledger, "NVIDIA-H100-80GB-HBM3", "2.49", effective_from=since)
    ready = [
        ReadyReplica(
            namespace="serving",
            deployment=model,
            model=model,
            replica=f"{model}-0",
            gpus=2,
            gpu_product="NVIDIA-H100-80GB-HBM3",
            ready_since=since,
        )
        for model in MODELS
    ]
    await record_observation(ledger, Observation(source="kubernetes", observed_at=utcnow(), ready=ready))
    return ids


def _bucket(column: str, metric: str) -> str:
    """The histogram column of `metric_le_bound` as a SUM over raw rows (cumulative buckets)."""
    bound = column.rsplit("_", 1)[1]
    source = "ttft_ms" if metric == "ttft" else "duration_ms"
    if bound == "inf":
        return f"SUM(CASE WHEN {source} IS NOT NULL THEN 1 ELSE 0 END)"
    return f"SUM(CASE WHEN {source} <= {bound} THEN 1 ELSE 0 END)"


def _events_and_rollups(path: Path, tenant_ids: list[str], events: int, price_ids: dict[str, int]) -> None:
    end = hour_of(utcnow())
    start = end - timedelta(days=30)
    span = int((end - start).total_seconds())
    db = sqlite3.connect(path)
    db.execute("CREATE TEMP TABLE t(n INTEGER PRIMARY KEY, id TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", enumerate(tenant_ids))
    db.execute("CREATE TEMP TABLE m(n INTEGER PRIMARY KEY, name TEXT, price INTEGER)")
    db.executemany(
        "INSERT INTO m VALUES (?, ?, ?)", [(i, name, price_ids[name]) for i, name in enumerate(MODELS)]
    )
    count = len(tenant_ids)
    started = (
        f"datetime('{start.strftime('%Y-%m-%d %H:%M:%S')}', '+' || (abs(random()) % {span}) || ' seconds')"
    )
    # The random draws are materialised first: in a join, SQLite may evaluate random() again per probe.
    db.execute(
        f"""
        CREATE TEMP TABLE r AS
        WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {events - 1})
        SELECT i, ((abs(random()) % {count}) * (abs(random()) % {count})) / {count} AS tn,
               abs(random()) % {len(MODELS)} AS mn, 200 + abs(random()) % 4000 AS p,
               20 + abs(random()) % 800 AS c, {started} || '.000000' AS s, 40 + abs(random()) % 1500 AS ttft
        FROM seq
        """
    )
    db.execute(
        """
        INSERT INTO usage_events (request_id, tenant_id, key_id, model, deployment, replica, prompt_tokens,
                                  cached_tokens, completion_tokens, outcome, started_at, finished_at, ttft_ms,
                                  duration_ms, price_id)
        SELECT 'req-' || i, t.id, 'key-bench', m.name, 'serving/' || m.name, m.name || '-0',
               p, p / 4, c, CASE WHEN i % 97 = 0 THEN 'failed' ELSE 'completed' END,
               s, s, ttft, ttft * 8, m.price
        FROM r JOIN t ON t.n = r.tn JOIN m ON m.n = r.mn
        """
    )
    db.execute("DROP TABLE r")
    histogram = ", ".join(_bucket(column, column.split("_", 1)[0]) for column in HISTOGRAM_COLUMNS)
    columns = ", ".join(HISTOGRAM_COLUMNS)
    hour = "strftime('%Y-%m-%d %H:00:00.000000', started_at)"
    db.execute(
        f"""
        INSERT INTO usage_hourly (tenant_id, model, price_id, hour, requests, aborted, failed,
                                  prompt_tokens, cached_tokens, completion_tokens, {columns})
        SELECT tenant_id, model, price_id, {hour}, COUNT(*), 0, SUM(outcome = 'failed'),
               SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens), {histogram}
        FROM usage_events GROUP BY tenant_id, model, price_id, {hour}
        """
    )
    day = "strftime('%Y-%m-%d 00:00:00.000000', hour)"
    sums = ", ".join(f"SUM({name})" for name in (*COUNTS, *HISTOGRAM_COLUMNS))
    db.execute(
        f"""
        INSERT INTO usage_daily (tenant_id, model, price_id, day, {", ".join(COUNTS)}, {columns})
        SELECT tenant_id, model, price_id, {day}, {sums} FROM usage_hourly
        GROUP BY tenant_id, model, price_id, {day}
        """
    )
    month = "strftime('%Y-%m-01 00:00:00.000000', day)"
    db.execute(
        f"""
        INSERT INTO usage_monthly (tenant_id, model, price_id, month, {", ".join(COUNTS)}, {columns})
        SELECT tenant_id, model, price_id, {month}, {sums} FROM usage_daily
        GROUP BY tenant_id, model, price_id, {month}
        """
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


async def _seed(settings: BillingSettings, path: Path, tenants: int, events: int) -> None:
    ledger = await Ledger.connect(settings)
    try:
        ids = await _accounts(ledger, tenants)
        async with ledger.sessions() as session:
            price_ids = {
                model: pid for model, pid in (await session.execute(select(Price.model, Price.id))).all()
            }
    finally:
        await ledger.close()
    _events_and_rollups(path, ids, events, price_ids)


async def _measure(settings: BillingSettings, rounds: int) -> dict[str, list[float]]:
    ledger = await Ledger.connect(settings)
    previous = month_of(month_of(utcnow()).start - timedelta(days=1)).label
    pages = {
        "overview (this month)": "/admin/overview",
        "overview (last month)": f"/admin/overview?period={previous}",
        "tenants": f"/admin/tenants?period={previous}",
        "tenant (heaviest)": f"/admin/tenants/tenant-0000?period={previous}",
        "models": f"/admin/models?period={previous}",
        "model": f"/admin/models/llama-70b?period={previous}",
        "invoices": f"/admin/invoices?period={previous}",
        "invoice CSV": f"/admin/invoices/tenant-0000/{previous}.csv",
    }
    times: dict[str, list[float]] = {name: [] for name in pages}
    try:
        transport = httpx.ASGITransport(app=build_admin_app(ledger))
        gc.collect()  # as `modelplex ledger serve` and the gateway do once started
        gc.freeze()
        async with httpx.AsyncClient(transport=transport, base_url="http://console", timeout=120) as client:
            form = await client.get("/admin/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            signed = await client.post("/admin/login", data={"csrf": csrf.group(1), "secret": TOKEN})
            assert signed.status_code == 303, signed.text
            for _ in range(rounds):
                for name, path in pages.items():
                    began = time.perf_counter()
                    response = await client.get(path)
                    times[name].append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200, (path, response.text[:300])
    finally:
        await ledger.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--db", type=Path, default=None, help="a ledger file to seed, or reuse if it exists")
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp(prefix="console-bench-")) / "ledger.db"
    settings = BillingSettings(
        database_url=f"sqlite:///{path}", state_dir=path.parent, key_pepper="bench", admin_token=TOKEN
    )
    if not path.exists():
        began = time.perf_counter()
        asyncio.run(_seed(settings, path, args.tenants, args.events))
        print(
            f"seeded {args.events:,} events, {args.tenants:,} tenants in {time.perf_counter() - began:.0f} s"
        )
    with sqlite3.connect(path) as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM usage_hourly").fetchone()
        (raw,) = db.execute("SELECT COUNT(*) FROM usage_events").fetchone()
    print(
        f"ledger {path} ({path.stat().st_size / 2**30:.1f} GiB): "
        f"{raw:,} usage events, {rows:,} hourly rollup rows"
    )
    times = asyncio.run(_measure(settings, args.rounds))
    print(
        f"{'page':<24} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   ({args.rounds} rounds, SQLite, in process)"
    )
    for name, samples in times.items():
        ordered = sorted(samples)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        print(f"{name:<24} {statistics.median(ordered):8.0f} {p95:8.0f} {ordered[-1]:8.0f}")


if __name__ == "__main__":
    main()
