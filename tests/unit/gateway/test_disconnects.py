"""Clients that leave early, and requests that a killed gateway left in flight."""

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from modelplex.billing.contracts import Outcome, PlanLimits, Principal
from modelplex.gateway.inflight import InFlightTable
from modelplex.gateway.metering import Meter
from mpxtest.upstream import KEY, World

AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "one two three four"}], "max_tokens": 100}


def _wait(probe: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_client_leaving_a_long_non_streaming_request_cancels_it_and_bills_it_aborted(
    world: World,
) -> None:
    replica = world.replica(token_delay=0.01)  # 300 tokens: 3 s unless cancelled
    world.tenant(tokens_per_minute=100_000)
    url = world.gateway()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json={**CHAT, "max_tokens": 300}, headers=AUTH, timeout=0.3)
    (event,) = world.wait_events(1)
    assert event.outcome is Outcome.ABORTED
    _wait(lambda: replica.aborted == 1)
    assert replica.aborted == 1  # the engine stopped generating
    assert 0 < replica.generation_tokens_total < 300
    # Sent upstream as a stream, it is billed what the engine generated until it saw the gateway leave:
    # the gateway half-closes and still reads what the engine had sent (in the socket, unread: one
    # token on a quiet machine, a few under load).
    assert event.prompt_tokens == 4
    assert event.completion_tokens == replica.generated[event.request_id]
    assert replica.bodies[-1]["stream"] is True
    metrics = httpx.get(url + "/metrics").text
    assert 'modelplex_gateway_requests_total{code="499",model="m1",tenant="*"} 1.0' in metrics
    assert 'modelplex_gateway_in_flight{model="m1"' in metrics
    assert world.gateways[0].pool.replicas()[0].in_flight == 0


def test_a_client_leaving_a_short_non_streaming_request_is_billed_the_whole_answer(world: World) -> None:
    """At most assemble_above_tokens (64) tokens: relayed whole, so read to its end and billed whole."""
    replica = world.replica(token_delay=0.02)  # 20 tokens: 0.4 s
    world.tenant(tokens_per_minute=100_000)
    url = world.gateway()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json={**CHAT, "max_tokens": 20}, headers=AUTH, timeout=0.1)
    (event,) = world.wait_events(1)
    assert (event.outcome, event.prompt_tokens, event.completion_tokens) == (Outcome.ABORTED, 4, 20)
    assert replica.aborted == 0
    assert "stream" not in replica.bodies[-1]  # sent as the client sent it
    metrics = httpx.get(url + "/metrics").text
    assert 'modelplex_gateway_requests_total{code="499",model="m1",tenant="*"} 1.0' in metrics
    assert world.gateways[0].pool.replicas()[0].in_flight == 0


def test_a_client_hanging_up_after_the_last_event_is_billed_completed(world: World) -> None:
    world.replica(linger_after_done=0.5)  # the engine ends its response a while after [DONE]
    world.tenant()
    url = world.gateway()
    body = {**CHAT, "max_tokens": 5, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=AUTH) as reply:
        lines = []
        for line in reply.iter_lines():
            lines.append(line)
            if line == "data: [DONE]":
                break  # and hang up, as the openai client does, before the response has ended
    # The client closed its connection as soon as it had [DONE]; the engine's end came later.
    (event,) = world.wait_events(1)
    assert event.outcome is Outcome.COMPLETED
    assert event.completion_tokens == 5
    metrics = httpx.get(url + "/metrics").text
    assert 'modelplex_gateway_requests_total{code="200",model="m1",tenant="*"} 1.0' in metrics


def test_a_client_leaving_the_queue_is_not_billed_and_frees_its_place(world: World) -> None:
    world.replica(latency=0.6)
    world.tenant()
    url = world.gateway(replica_max_in_flight=1, queue_timeout_seconds=5)
    body = {**CHAT, "max_tokens": 1}
    first = threading.Thread(target=lambda: httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH))
    first.start()
    _wait(lambda: world.replicas[0].requests == 1)  # the first holds the only place
    with pytest.raises(httpx.ReadTimeout):  # queued behind the first, then gone
        httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=0.2)
    _wait(lambda: 'queue_depth{model="m1"} 0.0' in httpx.get(url + "/metrics").text)
    assert 'modelplex_gateway_queue_depth{model="m1"} 0.0' in httpx.get(url + "/metrics").text
    first.join()
    events = world.wait_events(1)
    time.sleep(0.1)
    assert [e.outcome for e in events] == [Outcome.COMPLETED]
    assert len(world.sink.events) == 1
    assert world.replicas[0].requests == 1


def test_requests_left_in_flight_by_a_killed_gateway_are_billed_at_the_next_start(world: World) -> None:
    journal = world.tmp / "journal-0"  # the directory the first gateway of the world uses
    journal.mkdir()
    table = InFlightTable(journal)
    table.open()
    table.clear()
    principal = Principal(tenant_id="alpha", tenant_name="alpha", key_id="k", limits=PlanLimits())
    meter = Meter("req-cut-off", principal, "m1", "m1")
    table.track(meter)
    meter.usage.update({"prompt_tokens": 4, "completion_tokens": 9})
    table.update(meter)
    world.replica()
    world.gateway()
    (event,) = world.wait_events(1)
    assert (event.request_id, event.outcome) == ("req-cut-off", Outcome.FAILED)
    assert (event.prompt_tokens, event.completion_tokens) == (4, 9)
    assert InFlightTable(journal).open() == []  # recovered once: the table was cleared
    table.close()
