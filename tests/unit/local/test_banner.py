"""The `modelplex up` banner: gateway, key, and the admin plane where it is really served."""

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest

from modelplex.gateway.settings import GatewaySettings
from modelplex.local.stack import Endpoints, admin_base, banner, serves_page

App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]
ENDPOINTS = Endpoints("127.0.0.1", 8080)


def _answering(status: int, path: str = "/admin/") -> App:
    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        code = status if scope["path"] == path else 404
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


@pytest.mark.parametrize(("status", "served"), [(200, True), (303, True), (401, False), (404, False)])
def test_a_console_is_served_when_a_browser_gets_a_page_or_a_sign_in_redirect(
    status: int, served: bool
) -> None:
    assert asyncio.run(serves_page(_answering(status), "/admin/")) is served
    assert asyncio.run(serves_page(_answering(status), "/elsewhere/")) is False


def test_the_banner_names_the_console_only_when_it_is_served() -> None:
    without = banner(ENDPOINTS, "http://127.0.0.1:8080", "mpx-key", "tok-1", "smollm2", console=False)
    assert "Console:" not in without
    assert "\nGateway: http://127.0.0.1:8080/v1\nAPI key: mpx-key\n" in without
    assert "Admin API: http://127.0.0.1:8080/admin/v1/ (send Authorization: Bearer <admin token>)" in without
    assert "Admin token: tok-1\n" in without
    assert 'curl http://127.0.0.1:8080/admin/v1/tenants -H "Authorization: Bearer tok-1"' in without
    with_console = banner(ENDPOINTS, "http://127.0.0.1:9090", "mpx-key", "tok-1", "smollm2", console=True)
    assert "\nConsole: http://127.0.0.1:9090/admin/ (sign in with the admin token)\n" in with_console


def test_the_admin_plane_is_on_the_admin_listener_when_there_is_one(tmp_path: Any) -> None:
    shared = GatewaySettings(port=8080, journal_dir=tmp_path)
    assert admin_base(shared, ENDPOINTS) == "http://127.0.0.1:8080"
    apart = GatewaySettings(port=8080, admin_port=9090, journal_dir=tmp_path)
    assert admin_base(apart, ENDPOINTS) == "http://127.0.0.1:9090"
