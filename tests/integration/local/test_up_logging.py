"""`modelplex up` keeps the terminal readable: health checks log nothing, health changes one line each.

A real worker process (a small HTTP server standing in for vLLM's /health) is probed by the local
runtime's worker pool through httpx, with logging set up as `modelplex up` sets it up.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelplex import logs
from modelplex.local.runtime import load_templates
from modelplex.local.settings import LocalSettings
from modelplex.local.workers import WorkerPool

MANIFEST = """
apiVersion: modelplex.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: tiny}}
spec:
  model: {{source: "file://{model}"}}
"""
# Answers /health with 200, or 503 while the file named by its first argument exists.
FAKE_ENGINE = """
import http.server, pathlib, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
sick = pathlib.Path(sys.argv[1])
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503 if sick.exists() else 200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""
CHECKS = 8


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[WorkerPool, Path]]:
    (tmp_path / "model").mkdir()
    (tmp_path / "logs").mkdir()
    manifest = tmp_path / "tiny.yaml"
    manifest.write_text(MANIFEST.format(model=tmp_path / "model"))
    script, sick = tmp_path / "engine.py", tmp_path / "sick"
    script.write_text(FAKE_ENGINE)
    settings = LocalSettings(state_dir=tmp_path / "state")
    workers = WorkerPool([sys.executable, str(script), str(sick)], {}, tmp_path / "logs", 30)
    workers.set_templates(load_templates(settings, [manifest], tmp_path / "models"))
    workers.reconcile()
    try:
        yield workers, sick
    finally:
        workers.stop_all()


async def _probe(workers: WorkerPool, checks: int) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(checks):
            await workers.probe(http)
            await asyncio.sleep(0.05)


async def _probe_until_healthy(workers: WorkerPool) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            await workers.probe(http)
            if all(w.ready for s in workers.deployments.values() for w in s.workers):
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the fake engine never answered /health")


def _lines(stream: io.StringIO, text: str) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if text in line]


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    before = root.handlers[:], root.level
    yield stream
    root.handlers[:], _ = before
    root.setLevel(before[1])


def test_a_healthy_period_logs_no_check_and_each_change_one_line(
    pool: tuple[WorkerPool, Path], logged: io.StringIO
) -> None:
    workers, sick = pool
    logs.configure("INFO", logged)
    asyncio.run(_probe_until_healthy(workers))
    asyncio.run(_probe(workers, CHECKS))  # a healthy period
    assert _lines(logged, "HTTP Request") == []
    assert len(_lines(logged, "Worker became healthy deployment=tiny replica=0")) == 1
    sick.touch()
    asyncio.run(_probe(workers, CHECKS))
    assert len(_lines(logged, "Worker became unhealthy deployment=tiny replica=0")) == 1
    sick.unlink()
    asyncio.run(_probe(workers, CHECKS))
    assert len(_lines(logged, "Worker became healthy deployment=tiny replica=0")) == 2
    assert _lines(logged, "HTTP Request") == []


def test_debug_shows_every_check_again(pool: tuple[WorkerPool, Path], logged: io.StringIO) -> None:
    workers, _ = pool
    logs.configure("DEBUG", logged)
    asyncio.run(_probe_until_healthy(workers))
    asyncio.run(_probe(workers, CHECKS))
    assert len(_lines(logged, "HTTP Request: GET http://127.0.0.1:")) >= CHECKS


def test_a_level_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="log level 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR"):
        logs.configure("LOUD")
