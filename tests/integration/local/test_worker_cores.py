"""The local worker pool gives each CPU engine it runs at once its own cores.

Real worker processes (a small script standing in for vLLM, which writes down the binding it was
given) are started by the pool from real deployment files.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from modelplex.local.cpu_slots import BIND_VARIABLE
from modelplex.local.runtime import load_templates
from modelplex.local.settings import LocalSettings
from modelplex.local.workers import WorkerPool

MANIFEST = """
apiVersion: modelplex.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}}}
spec:
  model: {{source: "file://{model}"}}
  replicas: {replicas}
{scaling}"""
SCALING = "  scaling: {minReplicas: 1, maxReplicas: 3}\n"
# Writes the binding it was started with to <folder>/<port>, then waits to be stopped.
FAKE_ENGINE = f"""
import os, pathlib, sys, time
port = sys.argv[sys.argv.index("--port") + 1]
pathlib.Path(sys.argv[1], port).write_text(os.environ.get("{BIND_VARIABLE}", "unset"))
time.sleep(600)
"""


def _bindings(pool: WorkerPool, seen: Path) -> dict[str, str]:
    workers = [worker for state in pool.deployments.values() for worker in state.workers]
    deadline = time.monotonic() + 30
    while not all((seen / str(worker.port)).exists() for worker in workers):
        assert time.monotonic() < deadline, "a fake engine did not write its binding"
        time.sleep(0.05)
    return {worker.id: (seen / str(worker.port)).read_text() for worker in workers}


def _scale(pool: WorkerPool, name: str, replicas: int) -> None:
    state = pool.deployments[name]
    state.template = replace(state.template, replicas=replicas)
    pool.reconcile()


def _pool(
    tmp_path: Path, files: dict[str, tuple[int, str]], cores: list[int] | None
) -> tuple[WorkerPool, Path]:
    model, logs, seen = tmp_path / "model", tmp_path / "logs", tmp_path / "seen"
    for folder in (model, logs, seen):
        folder.mkdir(exist_ok=True)
    script = tmp_path / "engine.py"
    script.write_text(FAKE_ENGINE)
    manifests = []
    for name, (replicas, scaling) in files.items():
        manifest = tmp_path / f"{name}.yaml"
        manifest.write_text(MANIFEST.format(name=name, model=model, replicas=replicas, scaling=scaling))
        manifests.append(manifest)
    pool = WorkerPool([sys.executable, str(script), str(seen)], {}, logs, 30, cores=cores)
    pool.set_templates(
        load_templates(LocalSettings(state_dir=tmp_path / "state"), manifests, tmp_path / "models")
    )
    return pool, seen


def test_two_replicas_on_two_cores_compute_on_one_each(tmp_path: Path) -> None:
    pool, seen = _pool(tmp_path, {"chat": (2, "")}, cores=[0, 1])
    try:
        pool.reconcile()
        assert _bindings(pool, seen) == {"chat-0": "0", "chat-1": "1"}
    finally:
        pool.stop_all()


def test_a_scaling_deployment_is_planned_at_its_maximum_and_a_freed_slot_is_reused(tmp_path: Path) -> None:
    pool, seen = _pool(tmp_path, {"chat": (1, SCALING), "embed": (1, "")}, cores=list(range(8)))
    try:
        pool.reconcile()  # 3 + 1 engines planned: 2 cores each
        assert _bindings(pool, seen) == {"chat-0": "0,1", "embed-0": "2,3"}
        _scale(pool, "chat", 2)
        assert _bindings(pool, seen)["chat-1"] == "4,5"
        _scale(pool, "embed", 0)  # frees its cores
        _scale(pool, "chat", 3)
        assert _bindings(pool, seen) == {"chat-0": "0,1", "chat-1": "4,5", "chat-2": "2,3"}
    finally:
        pool.stop_all()


def test_one_engine_alone_and_engines_without_cores_keep_their_own_binding(tmp_path: Path) -> None:
    for files, cores in (({"chat": (1, "")}, [0, 1]), ({"chat": (2, "")}, None)):
        pool, seen = _pool(tmp_path, files, cores)
        try:
            pool.reconcile()
            assert set(_bindings(pool, seen).values()) == {"unset"}
        finally:
            pool.stop_all()
