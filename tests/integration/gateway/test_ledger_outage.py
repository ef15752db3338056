"""Fault: the ledger's PostgreSQL stopped for 60 s under steady load, then started again.

Keys already seen keep being served from the authority's last answers; a key never seen gets a clear
503; usage waits in the journal and, once PostgreSQL is back, the ledger holds exactly one row per
request answered.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from mpxtest.gatewayproc import cli, create_key, start_gateway, wait_usage_rows, write_config
from mpxtest.ledger import ADMIN_TOKEN, PEPPER
from mpxtest.postgres import EmbeddedPostgres
from mpxtest.upstream import World
from mpxtest.wait import eventually

OUTAGE_SECONDS = 60.0
RATE = 10.0  # requests per second, steady
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 4}


class SteadyLoad:
    """One request every 1/RATE seconds with `key`, until stopped; counts what came back."""

    def __init__(self, url: str, key: str) -> None:
        self._url, self._key = url, key
        self.codes: dict[int, int] = {}
        self.request_ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.wait(1 / RATE):
                response = client.post(
                    self._url + "/v1/chat/completions",
                    json=CHAT,
                    headers={"authorization": f"Bearer {self._key}"},
                )
                self.codes[response.status_code] = self.codes.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    self.request_ids.append(response.headers["x-request-id"])

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_a_60_s_ledger_outage_under_load_loses_nothing_and_bills_everything_once(
    world: World, tmp_path: Path
) -> None:
    replica = world.replica()
    with EmbeddedPostgres(tmp_path / "pg") as server:
        env = {
            "MODELPLEX_DATABASE_URL": server.create_database("outage"),
            "MODELPLEX_BILLING_STATE_DIR": str(tmp_path / "state"),
            "MODELPLEX_BILLING_KEY_PEPPER": PEPPER,
            "MODELPLEX_BILLING_ADMIN_TOKEN": ADMIN_TOKEN,
            "MODELPLEX_BILLING_AUTH_CACHE_SECONDS": "1",
        }
        cli(env, "plans", "set", "big", "--monthly-tokens", str(10**9))
        cli(env, "tenants", "create", "acme", "--plan", "big")
        seen, unseen = create_key(env, "acme"), create_key(env, "acme")
        config = write_config(tmp_path / "gateway.json", "m1", [replica.url])
        gateway = start_gateway(config, tmp_path / "journal", env, tmp_path / "gateway.log")
        try:
            with SteadyLoad(gateway.url, seen) as load:
                eventually(lambda: load.request_ids[5:] or None, 10, 0.05, what="requests served")
                server.stop()
                began = time.monotonic()
                refused = httpx.post(
                    gateway.url + "/v1/chat/completions",
                    json=CHAT,
                    headers={"authorization": f"Bearer {unseen}"},
                    timeout=30,
                )
                assert refused.status_code == 503
                assert refused.json()["error"]["code"] == "ledger_unavailable"
                assert "ledger is unreachable" in refused.json()["error"]["message"]
                during = len(load.request_ids)
                time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))
                served_during = len(load.request_ids) - during
                failures = httpx.get(gateway.url + "/metrics", timeout=10).text
                server.resume()
                time.sleep(2)  # a little steady load after the outage too
            answered = list(load.request_ids)
            assert load.codes == {200: len(answered)}  # every request of the known key was served
            assert served_during >= RATE * OUTAGE_SECONDS * 0.5
            # What the LedgerUnreachable alert reads: the unseen key's check, and the shipments.
            assert 'modelplex_gateway_ledger_failures_total{operation="authenticate"} 1.0' in failures
            assert 'modelplex_gateway_ledger_failures_total{operation="ship"}' in failures
            rows = wait_usage_rows(env, len(answered), timeout=60)
            assert sorted(rows) == sorted(answered)  # each answered request billed, exactly once
            print(
                f"ledger outage: sent {sum(load.codes.values())}, answered {len(answered)} "
                f"({served_during} during the outage), billed {len(rows)}"
            )
            assert all((row["prompt"], row["completion"]) == (3, 4) for row in rows.values())
        finally:
            log = gateway.stop()
        assert "Served a cached key check: the ledger is unreachable" in log
