"""`modelplex gateway run --admin-port` on the real ledger: /admin/ and /metrics only on the admin
listener, nothing of the admin plane on the tenant-facing port, tenant keys refused everywhere on
it, hostile header values refused without harm; without --admin-port, everything stays where it was."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx

from mpxtest.gatewayproc import CLI, cli, create_key, free_port, start_gateway, write_config
from mpxtest.ledger import ADMIN_TOKEN
from mpxtest.upstream import World

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
METRICS_TOKEN = "metrics-token-for-tests"
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "one two"}], "max_tokens": 2}
HOSTILE_HEADER_VALUES = [
    "Bearer mpx-'; DROP TABLE api_keys; --",
    "Bearer ' OR '1'='1",
    f"Bearer {ADMIN_TOKEN}",  # the admin token is not a tenant key
    "Bearer mpx-\u00e9\u00e8",
]


def _admin_paths(admin_url: str, key_id: str) -> list[tuple[str, str]]:
    schema = httpx.get(admin_url + "/admin/v1/openapi.json", headers=ADMIN).json()
    values = {"{tenant}": "acme", "{key_id}": key_id, "{name}": "pro", "{period}": "2026-03"}
    found: list[tuple[str, str]] = []
    for template, methods in schema["paths"].items():
        path = template
        for name, value in values.items():
            path = path.replace(name, value)
        found.extend((method.upper(), path) for method in methods)
    return [*found, ("GET", "/admin/v1/openapi.json"), ("GET", "/admin/v1/docs")]


def test_the_admin_plane_is_served_only_on_the_admin_listener(
    world: World, ledger_env: dict[str, str], tmp_path: Path
) -> None:
    replica = world.replica()
    admin_port = free_port()
    env = {
        **ledger_env,
        "MODELPLEX_GATEWAY_METRICS_LISTENER": "admin",
        "MODELPLEX_GATEWAY_METRICS_TOKEN": METRICS_TOKEN,
    }
    config = write_config(tmp_path / "gateway.json", "m1", [replica.url])
    gateway = start_gateway(
        config, tmp_path / "journal", env, tmp_path / "gateway.log", ("--admin-port", str(admin_port))
    )
    admin_url = f"http://127.0.0.1:{admin_port}"
    try:
        made = httpx.post(admin_url + "/admin/v1/tenants", json={"name": "acme"}, headers=ADMIN)
        assert made.status_code == 201
        created = httpx.post(admin_url + "/admin/v1/tenants/acme/keys", json={}, headers=ADMIN).json()
        tenant_key, key_id = created["plaintext"], created["key"]["id"]
        tenant = {"authorization": f"Bearer {tenant_key}"}
        assert httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, headers=tenant).status_code == 200

        for method, path in _admin_paths(admin_url, key_id):
            for headers in (ADMIN, tenant, {}):
                assert httpx.request(method, gateway.url + path, headers=headers).status_code == 404, path
            on_admin = httpx.request(method, admin_url + path, headers=tenant, json={})
            assert on_admin.status_code == 401, (method, path)
        for headers in (ADMIN, tenant, {"authorization": f"Bearer {METRICS_TOKEN}"}):
            assert httpx.get(gateway.url + "/metrics", headers=headers).status_code == 404

        assert httpx.get(admin_url + "/metrics").status_code == 401
        assert httpx.get(admin_url + "/metrics", headers=tenant).status_code == 401
        page = httpx.get(admin_url + "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
        assert page.status_code == 200
        assert 'modelplex_gateway_requests_total{code="200",model="m1",tenant="*"} 1.0' in page.text
        assert 'modelplex_gateway_in_flight{model="m1"' in page.text  # what the autoscaler reads

        for value in HOSTILE_HEADER_VALUES:
            hostile = {b"authorization": value.encode(), b"x-session-id": value.encode()}
            refused = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, headers=hostile)
            assert refused.status_code == 401, value
        tenants = httpx.get(admin_url + "/admin/v1/tenants", headers=ADMIN).json()["data"]
        assert [t["name"] for t in tenants] == ["acme"]
        assert httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, headers=tenant).status_code == 200
    finally:
        output = gateway.stop()
    assert "Serving admin listener" in output
    assert "Stopped gateway" in output
    for secret in (ADMIN_TOKEN, METRICS_TOKEN):
        assert secret not in output


def test_without_an_admin_port_the_admin_api_stays_on_the_tenant_port(
    world: World, ledger_env: dict[str, str], tmp_path: Path
) -> None:
    replica = world.replica()
    config = write_config(tmp_path / "gateway.json", "m1", [replica.url])
    cli(ledger_env, "tenants", "create", "acme")
    tenant = {"authorization": f"Bearer {create_key(ledger_env, 'acme')}"}
    gateway = start_gateway(config, tmp_path / "journal", ledger_env, tmp_path / "gateway.log")
    try:
        assert httpx.get(gateway.url + "/admin/v1/tenants", headers=ADMIN).status_code == 200
        assert httpx.get(gateway.url + "/admin/v1/tenants", headers=tenant).status_code == 401
        assert httpx.get(gateway.url + "/admin/v1/openapi.json").status_code == 401
        assert httpx.get(gateway.url + "/admin/v1/docs").status_code == 401
        assert httpx.get(gateway.url + "/metrics").status_code == 200
    finally:
        output = gateway.stop()
    assert "Serving admin listener" not in output


def test_an_admin_port_that_is_taken_stops_the_gateway_before_it_starts(
    ledger_env: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gateway.json", "m1", [])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**ledger_env, "MODELPLEX_GATEWAY_JOURNAL_DIR": str(tmp_path / "journal"), "PATH": "/bin"}
        ports = ["--port", str(free_port()), "--admin-port", str(port)]
        done = subprocess.run(
            [CLI, "gateway", "run", "--config", str(config), *ports],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
