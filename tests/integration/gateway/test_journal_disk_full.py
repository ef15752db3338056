"""Fault: the disk under the usage journal fills up while the gateway serves.

The gateway runs in its own mount namespace (`unshare`, no root needed) with its journal on a 1 MiB
tmpfs; the test fills that tmpfs through /proc/PID/root. A request finishing while the disk is full
is answered and its event waits (in memory and in the in-flight table); new requests get a clear 503
and an alert metric says why; once space is back the waiting event is journaled, serving resumes, and
every answered request is in the ledger exactly once.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx

from mpxtest.gatewayproc import cli, create_key, start_gateway, wait_usage_rows, write_config
from mpxtest.ledger import ADMIN_TOKEN, PEPPER
from mpxtest.upstream import World
from mpxtest.wait import eventually

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 4}
ON_TMPFS = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"'


def _fill(directory: Path) -> Path:
    """Write a file into `directory` until the filesystem refuses more."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
    return filler


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_full_journal_disk_refuses_new_requests_and_loses_nothing(world: World, tmp_path: Path) -> None:
    replica = world.replica()
    env = {
        "MODELPLEX_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "MODELPLEX_BILLING_STATE_DIR": str(tmp_path / "state"),
        "MODELPLEX_BILLING_KEY_PEPPER": PEPPER,
        "MODELPLEX_BILLING_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    cli(env, "tenants", "create", "acme")
    key = create_key(env, "acme")
    journal = tmp_path / "journal"
    journal.mkdir()
    config = write_config(tmp_path / "gateway.json", "m1", [replica.url])
    wrapper = ("unshare", "--mount", "--map-root-user", "sh", "-c", ON_TMPFS, str(journal))
    gateway = start_gateway(config, journal, env, tmp_path / "gateway.log", wrapper=wrapper)
    seen_by_gateway = Path(f"/proc/{gateway.process.pid}/root") / journal.relative_to("/")
    headers = {"authorization": f"Bearer {key}"}
    answered: list[str] = []

    def call() -> httpx.Response:
        response = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=30)
        if response.status_code == 200:
            answered.append(response.headers["x-request-id"])
        return response

    try:
        assert [call().status_code for _ in range(10)] == [200] * 10
        wait_usage_rows(env, 10)

        filler = _fill(seen_by_gateway)
        assert call().status_code == 200  # admitted before the journal failed: answered, its event waits
        refused = call()
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "usage_journal_unavailable"
        assert "disk is full" in refused.json()["error"]["message"]
        assert _metric(gateway.url, "modelplex_gateway_journal_unwritable") == 1
        assert _metric(gateway.url, "modelplex_gateway_journal_pending_events") == 1

        filler.unlink()
        eventually(lambda: call().status_code == 200, 15, 0.2, what="serving again once the disk has room")
        assert _metric(gateway.url, "modelplex_gateway_journal_unwritable") == 0
        assert [call().status_code for _ in range(5)] == [200] * 5
        rows = wait_usage_rows(env, len(answered), timeout=30)
        assert sorted(rows) == sorted(answered)  # every answered request billed, exactly once
    finally:
        log = gateway.stop()
    assert "Failed writing the usage journal" in log
    assert "Resumed writing the usage journal" in log
