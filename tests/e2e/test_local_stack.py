"""`modelplex up` end to end: the real engine behind the metered gateway, billed to the token."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from modelplex.processes import free_port, group_members
from mpxtest.engine import Counters, engine_counters
from mpxtest.wait import eventually

MODELPLEX = str(Path(sys.executable).parent / "modelplex")
START_BUDGET_SECONDS = 900.0  # vLLM on 2 shared CPU cores, plus the first run's kernel compilation


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    env: dict[str, str]
    state_dir: Path
    base_url: str
    api_key: str
    output: list[str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MODELPLEX, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads((self.state_dir / "local" / "status.json").read_text())
        return status

    def worker_urls(self) -> list[str]:
        return [w["url"] for w in self.status()["smollm2"]["workers"] if w["ready"]]

    def engine_total(self) -> Counters:
        return sum((engine_counters(url, "smollm2") for url in self.worker_urls()), Counters(0, 0))

    def usage(self) -> list[dict[str, Any]]:
        result = self.cli("usage", "--json")
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows


def _read_banner(process: subprocess.Popen[str], output: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if line.startswith("Usage so far: "):  # the banner's last line
            return


def _environment(state_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MODELPLEX_LOCAL_STATE_DIR": str(state_dir),
        "MODELPLEX_BILLING_STATE_DIR": str(state_dir),
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_dir = tmp_path_factory.mktemp("up-state")
    env = _environment(state_dir)
    port = free_port()
    with (state_dir / "up.stderr").open("w") as stderr:  # what the terminal shows besides the banner
        process = subprocess.Popen(
            [MODELPLEX, "up", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    output: list[str] = []
    reader = threading.Thread(target=_read_banner, args=(process, output), daemon=True)
    reader.start()
    reader.join(START_BUDGET_SECONDS)
    try:
        printed = "".join(output)
        key = re.search(r"^API key: (mpx-\S+)$", printed, re.MULTILINE)
        assert key, f"`modelplex up` printed no key within {START_BUDGET_SECONDS:.0f}s:\n{printed}"
        assert f"Gateway: http://127.0.0.1:{port}/v1" in printed
        yield RunningStack(process, env, state_dir, f"http://127.0.0.1:{port}/v1", key.group(1), output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)


def test_the_terminal_shows_the_banner_then_health_changes_not_health_checks(stack: RunningStack) -> None:
    admin = stack.base_url.removesuffix("/v1") + "/admin/v1/"
    printed = "".join(stack.output)
    assert f"Admin API: {admin} (send Authorization: Bearer <admin token>)" in printed
    assert re.search(r"^Admin token: \S+$", printed, re.MULTILINE)
    console = stack.base_url.removesuffix("/v1") + "/admin/"
    assert f"Console: {console} (sign in with the admin token)" in printed
    signin = httpx.get(console + "login", timeout=10)
    assert signin.status_code == 200
    assert "Admin token or API key" in signin.text
    time.sleep(3)  # the runtime checks each worker's /health every second
    logged = (stack.state_dir / "up.stderr").read_text()
    assert "HTTP Request" not in logged
    assert logged.count("Worker became healthy deployment=smollm2 replica=0") == 1


def _billed(stack: RunningStack) -> Counters:
    rows = stack.usage()
    return Counters(sum(r["promptTokens"] for r in rows), sum(r["completionTokens"] for r in rows))


def _billed_settles_at(stack: RunningStack, expected: Counters) -> None:
    eventually(lambda: _billed(stack) == expected, timeout=30, what=f"the ledger to show {expected}")


def test_calls_are_billed_exactly_what_the_engine_counted(stack: RunningStack) -> None:
    client = OpenAI(base_url=stack.base_url, api_key=stack.api_key, max_retries=0)
    engine_before, billed_before = stack.engine_total(), _billed(stack)

    chat = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Say hello."}], max_tokens=12
    )
    assert chat.usage is not None
    streamed = list(
        client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Count to three."}],
            max_tokens=12,
            stream=True,
        )
    )
    assert all(chunk.usage is None for chunk in streamed)  # usage was not asked for, so none is shown
    completion = client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=8)
    assert completion.choices[0].text

    engine_delta = stack.engine_total() - engine_before
    _billed_settles_at(stack, billed_before + engine_delta)


def test_an_aborted_stream_is_billed_for_what_was_generated(stack: RunningStack) -> None:
    engine_before, billed_before = stack.engine_total(), _billed(stack)
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
        "max_tokens": 400,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.stream(
        "POST", f"{stack.base_url}/chat/completions", json=body, headers=headers, timeout=60
    ) as reply:
        chunks = reply.iter_lines()
        received = [next(chunks) for _ in range(6)]
    assert any(line.startswith("data: ") for line in received)

    def engine_settled() -> Counters | None:
        first = stack.engine_total() - engine_before
        time.sleep(1)
        return first if first == stack.engine_total() - engine_before and first.generation else None

    engine_delta = eventually(engine_settled, timeout=30, what="the engine to stop generating")
    assert engine_delta.generation < 400  # the engine stopped when the client went away
    eventually(
        lambda: engine_delta.bills_aborted(_billed(stack) - billed_before),
        timeout=30,
        what=f"the ledger to show the engine's {engine_delta}",
    )
    assert sum(row["aborted"] for row in stack.usage()) >= 1


def test_a_second_replica_from_scale_receives_traffic(stack: RunningStack) -> None:
    scaled = stack.cli("scale", "smollm2", "--replicas", "2")
    assert scaled.returncode == 0, scaled.stderr
    eventually(
        lambda: len(stack.worker_urls()) == 2,
        timeout=START_BUDGET_SECONDS,
        interval=2,
        what="the second replica to be ready",
    )
    before = {url: engine_counters(url, "smollm2") for url in stack.worker_urls()}
    client = OpenAI(base_url=stack.base_url, api_key=stack.api_key, max_retries=0)
    for i in range(12):
        client.completions.create(
            model="smollm2", prompt=f"{i}: a different opening {i * 7919}", max_tokens=2
        )
    served = [engine_counters(url, "smollm2").prompt > before[url].prompt for url in before]
    assert served == [True, True]


def _intervals(stack: RunningStack) -> list[dict[str, Any]]:
    listed = stack.cli("capacity", "intervals", "--json")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    return rows


def test_the_capacity_ledger_records_each_ready_worker(stack: RunningStack) -> None:
    def open_intervals() -> list[dict[str, Any]] | None:
        found = [row for row in _intervals(stack) if row["endedAt"] is None]
        return found if len(found) == 2 else None

    serving = eventually(open_intervals, timeout=60, what="an open interval per ready worker")
    assert sorted(row["replica"] for row in serving) == ["smollm2-0", "smollm2-1"]
    assert {(row["model"], row["gpuProduct"], row["gpus"]) for row in serving} == {("smollm2", "cpu", 1)}
    report = stack.cli("capacity", "report", "--json")
    assert report.returncode == 0, report.stderr
    total = json.loads(report.stdout)["total"]
    assert total["tokensServed"] == sum(
        row["promptTokens"] + row["completionTokens"] for row in stack.usage()
    )
    assert Decimal(total["gpuHours"]) > 0
    assert Decimal(total["costPer1MTokens"]) > 0  # the local CPU profile's default cost


def test_ctrl_c_leaves_no_engine_process(stack: RunningStack) -> None:
    # Each worker leads its own process group: vLLM's API server, engine core and CPU workers.
    groups = [w["pid"] for w in stack.status()["smollm2"]["workers"]]
    assert groups
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=120) == 0
    assert [group for group in groups if group_members(group)] == []
    assert not (stack.state_dir / "local" / "up.pid").exists()
    assert [row["replica"] for row in _intervals(stack) if row["endedAt"] is None] == []
