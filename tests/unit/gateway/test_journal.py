import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelplex.billing.contracts import Outcome, UsageEvent
from modelplex.gateway.journal import Cursor, Journal, segment_numbers
from modelplex.gateway.metering import trusted_event
from modelplex.gateway.shipper import Shipper
from mpxtest.upstream import MemorySink


def _event(i: int) -> UsageEvent:
    now = datetime.now(UTC)
    return UsageEvent(
        request_id=f"req-{i}",
        tenant_id="t",
        key_id="k",
        model="m",
        deployment="m",
        replica="r",
        prompt_tokens=i,
        cached_tokens=0,
        completion_tokens=1,
        outcome=Outcome.COMPLETED,
        started_at=now,
        finished_at=now,
        duration_ms=1.0,
    )


def _journal(directory: Path, segment_bytes: int = 1 << 20) -> Journal:
    journal = Journal(directory, segment_bytes, 0.005)
    journal.open()
    return journal


def test_a_failing_sink_delays_shipping_and_loses_nothing(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    sink = MemorySink()
    shipper = Shipper(journal, sink, batch_size=4, interval=0.01, backoff_max=0.05)
    for i in range(10):
        journal.append(_event(i))
    sink.failing = True
    with pytest.raises(ConnectionError):
        asyncio.run(shipper.ship_once())
    assert shipper.position.offset == 0  # nothing acknowledged
    sink.failing = False
    assert asyncio.run(shipper.drain(5))
    assert sorted(sink.events) == sorted(f"req-{i}" for i in range(10))
    assert sink.batches == 3
    journal.close()


def test_the_run_loop_retries_until_the_sink_recovers(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    sink = MemorySink()
    sink.failing = True
    failures: list[None] = []
    shipper = Shipper(
        journal,
        sink,
        batch_size=100,
        interval=0.01,
        backoff_max=0.02,
        on_failure=lambda: failures.append(None),
    )

    async def scenario() -> None:
        task = asyncio.create_task(shipper.run())
        journal.append(_event(1))
        await asyncio.sleep(0.1)
        assert not sink.events
        assert failures
        waiting = shipper.backlog
        assert waiting > 0  # the backlog shows while the sink fails, not only once it ships again
        journal.append(_event(2))
        await asyncio.sleep(0.1)
        assert shipper.backlog > waiting
        sink.failing = False
        for _ in range(200):
            if len(sink.events) == 2 and shipper.backlog == 0:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    assert list(sink.events) == ["req-1", "req-2"]
    assert shipper.backlog == 0
    journal.close()


def test_replay_after_a_crash_ships_everything_once(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    sink = MemorySink()
    shipper = Shipper(journal, sink, batch_size=3, interval=0.01, backoff_max=0.05)
    for i in range(5):
        journal.append(_event(i))
    asyncio.run(shipper.ship_once())  # 3 shipped and acknowledged
    for i in range(5, 8):
        journal.append(_event(i))
    # A crash: no close, a torn half-line at the end, and the last cursor save lost.
    segment = tmp_path / f"segment-{journal.segment:010d}.jsonl"
    with segment.open("ab") as handle:
        handle.write(b'{"request_id": "torn')
    os.close(journal._fd)
    os.close(journal._lock_fd)

    restarted = _journal(tmp_path)
    replay = Shipper(restarted, sink, batch_size=100, interval=0.01, backoff_max=0.05)
    assert replay.position == Cursor(tmp_path).load()
    assert asyncio.run(replay.drain(5))
    assert sorted(sink.events) == sorted(f"req-{i}" for i in range(8))
    restarted.append(_event(8))
    assert asyncio.run(replay.drain(5))
    assert "req-8" in sink.events
    restarted.close()


def test_segments_rotate_and_shipped_ones_are_deleted(tmp_path: Path) -> None:
    journal = _journal(tmp_path, segment_bytes=1000)
    sink = MemorySink()
    shipper = Shipper(journal, sink, batch_size=100, interval=0.01, backoff_max=0.05)
    for i in range(20):
        journal.append(_event(i))
    assert len(segment_numbers(tmp_path)) > 2
    assert asyncio.run(shipper.drain(5))
    assert len(sink.events) == 20
    assert segment_numbers(tmp_path) == [journal.segment]
    journal.close()


def test_a_journal_has_one_owner(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    with pytest.raises(RuntimeError, match="in use"):
        _journal(tmp_path)
    journal.close()


def test_a_journal_line_is_the_events_json_as_pydantic_writes_it(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    events = [_event(1), _event(2).model_copy(update={"ttft_ms": 12.5, "outcome": Outcome.ABORTED})]
    for event in events:
        journal.append(event)
    journal.close()
    lines = (tmp_path / "segment-0000000001.jsonl").read_bytes().splitlines()
    assert lines == [event.model_dump_json().encode() for event in events]


def test_a_trusted_event_is_the_validated_event() -> None:
    fields = _event(3).model_dump()
    trusted = trusted_event(**fields)
    assert trusted == UsageEvent(**fields)
    assert trusted.model_dump_json() == UsageEvent(**fields).model_dump_json()
    assert trusted.model_fields_set == UsageEvent(**fields).model_fields_set
