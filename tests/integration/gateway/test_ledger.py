"""`modelplex gateway run` on the real ledger (SQLite file and PostgreSQL): keys made with the CLI,
usage rows written exactly once, revocation and suspension within seconds, the admin API mounted."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai

from mpxtest.gatewayproc import (
    cli,
    create_key,
    start_gateway,
    wait_usage_rows,
    write_config,
)
from mpxtest.ledger import ADMIN_TOKEN
from mpxtest.upstream import World
from mpxtest.wait import eventually

MESSAGES: Any = [{"role": "user", "content": "one two three"}]


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def _fails_with(error: type[Exception], call: Callable[[], object]) -> bool:
    try:
        call()
    except error:
        return True
    return False


def _serve_three(client: openai.OpenAI) -> list[str]:
    """A chat answer, a stream and a completion; their request ids."""
    chat = client.chat.completions.with_raw_response.create(model="m1", messages=MESSAGES, max_tokens=4)
    stream = client.chat.completions.with_raw_response.create(
        model="m1", messages=MESSAGES, max_tokens=3, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream.parse())
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    completion = client.completions.with_raw_response.create(model="m1", prompt="a b", max_tokens=2)
    assert completion.parse().usage is not None
    return [r.headers["x-request-id"] for r in (chat, stream, completion)]


def test_gateway_on_the_ledger(world: World, ledger_env: dict[str, str], tmp_path: Path) -> None:
    replica = world.replica()
    for tenant in ("acme", "beta"):
        cli(ledger_env, "tenants", "create", tenant)
    acme, beta = create_key(ledger_env, "acme"), create_key(ledger_env, "beta")
    config = write_config(tmp_path / "gateway.json", "m1", [replica.url])
    gateway = start_gateway(config, tmp_path / "journal", ledger_env, tmp_path / "gateway.log")
    try:
        ids = _serve_three(_client(gateway.url, acme))
        rows = wait_usage_rows(ledger_env, 3)
        assert sorted(rows) == sorted(ids)
        assert {(rows[i]["prompt"], rows[i]["completion"]) for i in ids} == {(3, 4), (3, 3), (2, 2)}
        assert sum(r["completion"] for r in rows.values()) == replica.generation_tokens_total == 9
        assert {r["outcome"] for r in rows.values()} == {"completed"}
        _admin_api(gateway.url)
        _suspension(ledger_env, gateway.url, beta)
        _revocation(ledger_env, gateway.url, acme)
        served = replica.generated  # tokens by request id, as the engine saw them
        rows = wait_usage_rows(ledger_env, len(served))
        assert {i: r["completion"] for i, r in rows.items()} == served  # each request once, exactly
    finally:
        output = gateway.stop()
    assert "Stopped gateway" in output
    assert "Connected ledger" in output
    for secret in (acme, beta, ADMIN_TOKEN):
        assert secret not in output


def _admin_api(url: str) -> None:
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    listed = httpx.get(url + "/admin/v1/tenants", headers=admin)
    assert listed.status_code == 200
    assert sorted(t["name"] for t in listed.json()["data"]) == ["acme", "beta"]
    assert httpx.get(url + "/admin/v1/tenants").status_code == 401
    assert httpx.get(url + "/admin/v1/openapi.json").status_code == 401
    schema = httpx.get(url + "/admin/v1/openapi.json", headers=admin).json()
    assert schema["info"]["title"] == "Modelplex ledger admin API"


def _suspension(env: dict[str, str], url: str, key: str) -> None:
    client = _client(url, key)
    assert client.chat.completions.create(model="m1", messages=MESSAGES, max_tokens=1).usage is not None
    cli(env, "tenants", "suspend", "beta")
    started = time.monotonic()
    create = lambda: client.chat.completions.create(model="m1", messages=MESSAGES)  # noqa: E731
    eventually(lambda: _fails_with(openai.PermissionDeniedError, create), 10, 0.05, what="403")
    assert time.monotonic() - started < 3  # auth_cache_seconds is 1
    # Through the gateway's own admin API the change shows at once: it empties the key cache.
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    resumed = httpx.patch(url + "/admin/v1/tenants/beta", json={"status": "active"}, headers=admin)
    assert resumed.status_code == 200
    assert _fails_with(openai.PermissionDeniedError, create) is False


def _revocation(env: dict[str, str], url: str, key: str) -> None:
    client = _client(url, key)
    assert client.models.list().data[0].id == "m1"
    cli(env, "keys", "revoke", key)
    started = time.monotonic()
    eventually(lambda: _fails_with(openai.AuthenticationError, client.models.list), 10, 0.05, what="401")
    assert time.monotonic() - started < 3
