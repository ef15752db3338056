"""Regression tests for classes of gateway advisories: client headers never reach the engine, engine
headers never reach the client, and nothing a client sends picks where a request goes."""

import httpx
import pytest

from mpxtest.upstream import KEY, World

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 2}
HOSTILE = {
    "authorization": f"Bearer {KEY}",
    "host": "169.254.169.254",
    "x-forwarded-for": "10.0.0.1",
    "x-forwarded-host": "evil.example",
    "x-request-id": "chosen-by-the-client",
    "x-modelplex-tenant": "someone-else",
    "cookie": "session=stolen",
    "x-upstream-url": "http://169.254.169.254/latest/meta-data",
}


@pytest.mark.parametrize("stream", [False, True])
def test_no_client_header_reaches_the_engine_and_no_engine_header_reaches_the_client(
    world: World, stream: bool
) -> None:
    replica = world.replica(answer_headers=[(b"x-engine-internal", b"secret"), (b"set-cookie", b"a=b")])
    world.tenant()
    url = world.gateway()
    response = httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": stream}, headers=HOSTILE)
    assert response.status_code == 200
    sent = replica.headers[-1]
    assert set(sent) <= {b"host", b"content-type", b"accept", b"x-request-id", b"content-length",
                         b"user-agent", b"accept-encoding"}  # fmt: skip
    assert sent[b"host"] == replica.url.removeprefix("http://").encode()
    assert sent[b"x-request-id"] != b"chosen-by-the-client"  # the gateway's own id
    assert b"authorization" not in sent
    assert "x-engine-internal" not in response.headers
    assert "set-cookie" not in response.headers
    assert response.headers["x-request-id"] == sent[b"x-request-id"].decode()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {**CHAT, "model": "http://169.254.169.254/latest"}),
        ("/v1/chat/completions", {**CHAT, "model": "../m1"}),
        ("/v1/chat/completions/../../admin/v1/tenants", CHAT),
        ("/v1//chat/completions", CHAT),
        ("/v1/chat/completions%2F..%2F..%2Fadmin", CHAT),
    ],
)
def test_nothing_a_client_sends_chooses_the_upstream(
    world: World, path: str, body: dict[str, object]
) -> None:
    replica = world.replica()
    world.tenant()
    url = world.gateway()
    response = httpx.post(url + path, json=body, headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert replica.requests == 0
