"""Starting and stopping the dev cluster leaves nothing behind, whoever stops it and however."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelplex.processes import group_members, pid_alive
from mpxtest.cluster import OPT_OUT
from mpxtest.wait import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.skipif(os.environ.get(OPT_OUT) == "1", reason=f"{OPT_OUT}=1")]

CLI = [str(Path(sys.executable).parent / "modelplex")]
KUBECTL = Path(sys.executable).parent / "kubectl"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=180, check=False)


def test_cli_up_kubeconfig_down(tmp_path: Path) -> None:
    env = {**os.environ, "MODELPLEX_DEV_CLUSTER_STATE_DIR": str(tmp_path / "state")}
    up = _cli("dev-cluster", "up", "--nodes", "3", "--gpus-per-node", "4", env=env)
    assert up.returncode == 0, up.stderr
    try:
        assert "Dev cluster ready" in up.stdout
        again = _cli("dev-cluster", "up", env=env)
        assert again.returncode != 0
        assert "already running" in again.stderr

        kubeconfig = _cli("dev-cluster", "kubeconfig", env=env).stdout.strip()
        nodes = subprocess.run(
            [str(KUBECTL), "--kubeconfig", kubeconfig, "get", "nodes", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        items = json.loads(nodes.stdout)["items"]
        assert [n["status"]["allocatable"]["nvidia.com/gpu"] for n in items] == ["4", "4", "4"]
        pids = [c["pid"] for c in json.loads((tmp_path / "state" / "state.json").read_text())["components"]]
    finally:
        down = _cli("dev-cluster", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert not [pid for pid in pids if group_members(pid)]
    assert not (tmp_path / "state" / "state.json").exists()


def test_components_die_with_a_killed_test_process(tmp_path: Path) -> None:
    script = (
        "import json, sys, time\n"
        "from modelplex.devcluster.binaries import ensure_binaries\n"
        "from modelplex.devcluster.cluster import start_cluster\n"
        "from modelplex.devcluster.config import DevClusterSettings\n"
        "s = DevClusterSettings(with_lws=False)\n"
        "c = start_cluster(ensure_binaries(s.cache_dir), s)\n"
        "print(json.dumps([x.pid for x in c.components]), flush=True)\n"
        "time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    pids = json.loads(holder.stdout.readline())
    assert len(pids) == 5
    assert all(pid_alive(pid) for pid in pids)
    holder.send_signal(signal.SIGKILL)  # no cleanup code runs: only the kernel can stop the children
    holder.wait()
    eventually(lambda: not [pid for pid in pids if group_members(pid)], timeout=30, what="components to exit")
