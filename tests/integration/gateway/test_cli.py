"""`modelplex gateway run` as a process: static config file, serving, graceful stop."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from modelplex.cli import main
from mpxtest.upstream import World, free_socket


def test_gateway_run_serves_a_static_config_and_stops_on_sigterm(world: World, tmp_path: Path) -> None:
    replica = world.replica("smol")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        json.dumps(
            {
                "models": [{"name": "smol", "routing": "least-load", "endpoints": [{"url": replica.url}]}],
                "tenants": [{"name": "acme", "keys": ["mpx-cli"]}],
            }
        )
    )
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    cli = str(Path(sys.executable).parent / "modelplex")
    env = {"MODELPLEX_GATEWAY_JOURNAL_DIR": str(tmp_path / "journal"), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [cli, "gateway", "run", "--port", str(port), "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.1)
        auth = {"authorization": "Bearer mpx-cli"}
        assert [m["id"] for m in httpx.get(url + "/v1/models", headers=auth).json()["data"]] == ["smol"]
        body = {"model": "smol", "prompt": "a b c", "max_tokens": 2}
        assert httpx.post(url + "/v1/completions", json=body, headers=auth).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode in (0, -signal.SIGTERM), (
        output
    )  # uvicorn re-raises the signal after a clean stop
    assert "Stopped gateway" in output
    assert "mpx-cli" not in output
    lines = (tmp_path / "journal").glob("segment-*.jsonl")
    events = [json.loads(line) for path in lines for line in path.read_text().splitlines()]
    assert [(e["prompt_tokens"], e["completion_tokens"]) for e in events] == [(3, 2)]


def test_static_tenants_are_refused_when_the_ledger_is_configured(tmp_path: Path) -> None:
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"models": [], "tenants": [{"name": "acme", "keys": ["mpx-x"]}]}))
    env = {"MODELPLEX_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}"}
    result = CliRunner().invoke(main, ["gateway", "run", "--config", str(config)], env=env)
    assert result.exit_code == 2
    assert "tenants" in result.output
