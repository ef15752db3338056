"""Who may read the gateway's /metrics, where it is served, and whether it names tenants."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from modelplex.gateway.settings import GatewaySettings
from mpxtest.upstream import KEY, World, serve

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "one two"}], "max_tokens": 2}
METRICS_TOKEN = "metrics-token-for-tests"


def _answer(url: str) -> None:
    response = httpx.post(url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 200


def _admin_listener_url(world: World) -> str:
    listener = world.gateways[-1].admin_listener
    assert listener is not None
    served = world.loop.run(serve(listener))
    world.served.append(served)
    return served.url


def test_by_default_metrics_carry_no_tenant_ids(world: World) -> None:
    world.replica()
    world.tenant("alpha")
    url = world.gateway()
    _answer(url)
    httpx.post(url + "/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer mpx-wrong"})
    world.wait_events(1)
    text = httpx.get(url + "/metrics").text
    assert 'modelplex_gateway_requests_total{code="200",model="m1",tenant="*"} 1.0' in text
    assert 'modelplex_gateway_tokens_total{model="m1",tenant="*",type="completion"} 2.0' in text
    assert 'modelplex_gateway_requests_total{code="401",model="-",tenant="-"} 1.0' in text
    assert "alpha" not in text


def test_a_metrics_token_is_required_when_configured(world: World) -> None:
    world.replica()
    world.tenant()
    url = world.gateway(metrics_token=METRICS_TOKEN)
    good = {"authorization": f"Bearer {METRICS_TOKEN}"}
    refused = [
        {},
        {"authorization": f"Bearer {KEY}"},  # a tenant key is not the metrics token
        {"authorization": METRICS_TOKEN},
        {"authorization": f"Basic {METRICS_TOKEN}"},
        {"authorization": f"Bearer {METRICS_TOKEN}x"},
    ]
    for headers in refused:
        response = httpx.get(url + "/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "invalid_metrics_token"
        assert "modelplex_gateway" not in response.text
    doubled = httpx.get(url + "/metrics", headers=[("authorization", good["authorization"])] * 2)
    assert doubled.status_code == 401
    page = httpx.get(url + "/metrics", headers=good)
    assert page.status_code == 200
    assert "modelplex_gateway_queue_depth" in page.text


def test_metrics_on_the_admin_listener_are_not_served_to_tenants(world: World) -> None:
    world.replica()
    world.tenant()
    url = world.gateway(admin_port=1, metrics_listener="admin")  # the listener is served below
    admin = _admin_listener_url(world)
    _answer(url)
    assert httpx.get(url + "/metrics").status_code == 404
    assert httpx.get(url + "/admin/v1/tenants").status_code == 404
    page = httpx.get(admin + "/metrics")
    assert page.status_code == 200
    assert 'modelplex_gateway_requests_total{code="200",model="m1",tenant="*"} 1.0' in page.text
    assert httpx.get(admin + "/healthz").status_code == 200
    assert httpx.post(admin + "/metrics").status_code == 405
    assert httpx.get(admin + "/v1/models", headers={"authorization": f"Bearer {KEY}"}).status_code == 404


def test_without_an_admin_port_the_tenant_port_serves_metrics_as_before(world: World) -> None:
    world.replica()
    world.tenant()
    url = world.gateway()
    assert world.gateways[-1].admin_listener is None
    assert httpx.get(url + "/metrics").status_code == 200


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"metrics_listener": "admin"}, "needs admin_port"),
        ({"admin_port": 8080, "port": 8080}, "is the tenant-facing port"),
        ({"admin_host": "127.0.0.2"}, "admin_host is set but admin_port is not"),
    ],
)
def test_incoherent_listener_settings_are_refused(settings: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        GatewaySettings.model_validate(settings)
