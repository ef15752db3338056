"""The engine timeouts on the gateway's one timer per engine connection: a replica slower than the
first-byte timeout fails the attempt (502), a stream silent longer than the idle timeout is cut and
billed failed with what the engine reported, and a reused connection carries neither timeout over."""

from __future__ import annotations

import httpx

from modelplex.billing.contracts import Outcome
from mpxtest.upstream import KEY, World

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "a b c d"}], "max_tokens": 4}
AUTH = {"authorization": f"Bearer {KEY}"}


def test_a_replica_slower_than_the_first_byte_timeout_fails_the_request_with_502(world: World) -> None:
    replica = world.replica(latency=1.0)
    world.tenant()
    url = world.gateway(first_byte_timeout_seconds=0.2)
    response = httpx.post(url + "/v1/chat/completions", json=CHAT, headers=AUTH, timeout=5)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    metrics = httpx.get(url + "/metrics").text
    assert 'kind="timeout"' in metrics
    replica.latency = 0.0  # the same gateway, fast again: answered, no deadline left behind
    for _ in range(3):
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=AUTH, timeout=5).status_code == 200


def test_a_stream_silent_past_the_idle_timeout_is_cut_and_billed_failed(world: World) -> None:
    world.replica(token_delay=0.6)
    world.tenant()
    url = world.gateway(idle_stream_timeout_seconds=0.2)
    with httpx.stream(
        "POST", url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH, timeout=5
    ) as response:
        body = response.read()
    assert response.status_code == 200
    assert b"upstream_error" in body
    assert b"[DONE]" not in body
    (event,) = world.wait_events(1)
    assert event.outcome is Outcome.FAILED
    assert event.completion_tokens < 4
