"""The in-flight table: requests cut off by a killed gateway are recovered with their last usage."""

import math
import subprocess
import sys
import textwrap
from pathlib import Path

from modelplex.billing.contracts import Outcome, PlanLimits, Principal
from modelplex.gateway.inflight import FIRST_SLOTS, InFlightTable
from modelplex.gateway.metering import Meter

PRINCIPAL = Principal(tenant_id="t1", tenant_name="acme", key_id="k1", limits=PlanLimits())


def _meter(i: int) -> Meter:
    meter = Meter(f"req-{i}", PRINCIPAL, "m1", "dep1")
    meter.replica = "10.0.0.1:8000"
    return meter


def _table(directory: Path) -> InFlightTable:
    table = InFlightTable(directory)
    assert table.open() == []
    table.clear()
    return table


def test_occupied_slots_come_back_as_failed_events_with_the_last_usage(tmp_path: Path) -> None:
    table = _table(tmp_path)
    done, cut = _meter(1), _meter(2)
    table.track(done)
    table.track(cut)
    cut.usage.update(
        {"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2}}
    )
    cut.ttft_seconds = 0.25
    table.update(cut)
    table.release(done)
    assert done.slot == -1

    again = InFlightTable(tmp_path)  # what the next process sees (same pages: MAP_SHARED)
    (event,) = again.open()
    assert event.request_id == "req-2"
    assert (event.prompt_tokens, event.cached_tokens, event.completion_tokens) == (7, 2, 3)
    assert (event.tenant_id, event.key_id, event.model, event.deployment) == ("t1", "k1", "m1", "dep1")
    assert (event.replica, event.outcome) == ("10.0.0.1:8000", Outcome.FAILED)
    assert event.ttft_ms is not None
    assert math.isclose(event.ttft_ms, 250.0)
    assert event.started_at == cut.started_at <= event.finished_at
    again.clear()
    assert InFlightTable(tmp_path).open() == []
    table.close()
    again.close()


def test_a_retry_on_another_replica_rewrites_the_slot(tmp_path: Path) -> None:
    table = _table(tmp_path)
    meter = _meter(1)
    table.track(meter)
    slot = meter.slot
    meter.replica = "10.0.0.2:8000"
    table.track(meter)
    assert meter.slot == slot
    (event,) = InFlightTable(tmp_path).open()
    assert event.replica == "10.0.0.2:8000"
    table.close()


def test_the_table_grows_and_reuses_freed_slots(tmp_path: Path) -> None:
    table = _table(tmp_path)
    meters = [_meter(i) for i in range(FIRST_SLOTS + 10)]
    for meter in meters:
        table.track(meter)
    last_freed = meters[-2].slot
    for meter in meters[::2]:
        table.release(meter)
    reused = _meter(10_000)
    table.track(reused)
    assert reused.slot == last_freed
    recovered = {e.request_id for e in InFlightTable(tmp_path).open()}
    assert recovered == {m.request_id for m in meters[1::2]} | {"req-10000"}
    table.close()


def test_a_killed_process_leaves_its_requests_for_the_next_one(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from modelplex.billing.contracts import PlanLimits, Principal
        from modelplex.gateway.inflight import InFlightTable
        from modelplex.gateway.metering import Meter
        table = InFlightTable(Path({str(tmp_path)!r}))
        table.open()
        table.clear()
        who = Principal(tenant_id="t", tenant_name="t", key_id="k", limits=PlanLimits())
        meter = Meter("req-killed", who, "m", "m")
        table.track(meter)
        meter.usage.update({{"prompt_tokens": 5, "completion_tokens": 4}})
        table.update(meter)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert done.returncode == -9
    (event,) = InFlightTable(tmp_path).open()
    assert (event.request_id, event.prompt_tokens, event.completion_tokens) == ("req-killed", 5, 4)
