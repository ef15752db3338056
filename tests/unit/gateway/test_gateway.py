"""The gateway served by uvicorn in front of fake vLLM replicas: proxying, metering, errors, resilience."""

import json
import threading
import time
from typing import Any

import httpx
import pytest

from modelplex.billing.contracts import Outcome
from modelplex.gateway.discovery.base import ModelSpec
from modelplex.gateway.inference import UPSTREAM_STREAM_OPTIONS
from mpxtest.upstream import KEY, World

AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "one two three four"}], "max_tokens": 6}


def _post(
    url: str, body: Any = CHAT, headers: dict[str, str] = AUTH, path: str = "/v1/chat/completions"
) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=headers, timeout=30)


def _stream_chunks(url: str, body: dict[str, Any]) -> list[str]:
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        assert response.status_code == 200
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def _model(name: str, world: World, **fields: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {"name": name, "endpoints": [{"url": r.url} for r in world.replicas], **fields}
    )


def test_non_streaming_answers_are_assembled_from_the_engines_stream_and_metered(world: World) -> None:
    replica = world.replica()
    world.tenant()
    url = world.gateway(assemble_above_tokens=0)  # every non-streaming request assembled
    response = _post(url)
    assert response.status_code == 200
    assert response.json()["usage"] == {
        "prompt_tokens": 4,
        "total_tokens": 10,
        "completion_tokens": 6,
        "prompt_tokens_details": None,
        "completion_tokens_details": None,
    }
    assert response.json()["object"] == "chat.completion"
    assert response.json()["choices"][0]["message"]["content"] == "".join(f"tok{i} " for i in range(1, 7))
    assert response.headers["x-request-id"]
    assert replica.bodies[-1] == {**CHAT, "stream": True, "stream_options": UPSTREAM_STREAM_OPTIONS}
    (event,) = world.wait_events(1)
    assert (event.prompt_tokens, event.completion_tokens, event.outcome) == (4, 6, Outcome.COMPLETED)
    assert (event.tenant_id, event.model, event.replica) == ("alpha", "m1", replica.url.split("//")[1])
    assert event.request_id == response.headers["x-request-id"]


def test_completions_and_embeddings_are_metered(world: World) -> None:
    world.replica()
    world.tenant()
    url = world.gateway()
    assert (
        _post(url, {"model": "m1", "prompt": "a b", "max_tokens": 2}, path="/v1/completions").status_code
        == 200
    )
    assert _post(url, {"model": "m1", "input": ["a b c", "d"]}, path="/v1/embeddings").status_code == 200
    counts = sorted((e.prompt_tokens, e.completion_tokens) for e in world.wait_events(2))
    assert counts == [(2, 2), (4, 0)]


@pytest.mark.parametrize(
    ("options", "usage_chunks", "final_usage"),
    [
        (None, 0, False),
        ({"include_usage": True}, 1, True),
        ({"include_usage": True, "continuous_usage_stats": True}, 8, True),
    ],
)
def test_streams_show_exactly_the_usage_the_client_asked_for(
    world: World, options: dict[str, bool] | None, usage_chunks: int, final_usage: bool
) -> None:
    replica = world.replica()
    world.tenant()
    url = world.gateway()
    body: dict[str, Any] = {**CHAT, "stream": True}
    if options:
        body["stream_options"] = options
    data = _stream_chunks(url, body)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert sum("usage" in c for c in chunks) == usage_chunks
    assert (chunks[-1]["choices"] == []) is final_usage
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        == "tok1 tok2 tok3 tok4 tok5 tok6 "
    )
    sent = replica.bodies[-1]["stream_options"]
    assert sent == {"include_usage": True, "continuous_usage_stats": True}
    (event,) = world.wait_events(1)
    assert (event.prompt_tokens, event.completion_tokens, event.outcome) == (4, 6, Outcome.COMPLETED)
    assert event.ttft_ms is not None


def test_streams_are_relayed_chunk_by_chunk(world: World) -> None:
    world.replica(token_delay=0.05)
    world.tenant()
    url = world.gateway()
    arrivals = []
    with httpx.stream(
        "POST", url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH
    ) as response:
        for _ in response.iter_raw():
            arrivals.append(time.monotonic())
    assert len(arrivals) >= 6
    assert arrivals[-1] - arrivals[0] > 0.2  # not buffered until the end


def test_a_client_leaving_mid_stream_cancels_upstream_and_bills_what_was_generated(world: World) -> None:
    replica = world.replica(token_delay=0.05)
    world.tenant()
    url = world.gateway()
    body = {**CHAT, "stream": True, "max_tokens": 100}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=AUTH) as response:
        for i, _ in enumerate(response.iter_lines()):
            if i >= 6:
                break
    (event,) = world.wait_events(1)
    assert event.outcome is Outcome.ABORTED
    deadline = time.monotonic() + 5
    while replica.aborted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert replica.aborted == 1  # the engine stopped generating
    assert 0 < event.completion_tokens < 100
    # Exactly what the engine generated until it saw the gateway leave, including what it had sent
    # and the gateway had not read yet (the gateway half-closes and reads it).
    assert event.completion_tokens == replica.generation_tokens_total
    assert event.prompt_tokens == 4


def test_an_engine_dying_mid_stream_is_failed_and_billed_for_what_was_sent(world: World) -> None:
    world.replica(die_after_tokens=3)
    world.tenant()
    url = world.gateway()
    data = _stream_chunks(url, {**CHAT, "stream": True})
    assert json.loads(data[-1])["error"]["code"] == "upstream_error"
    (event,) = world.wait_events(1)
    assert (event.outcome, event.completion_tokens) == (Outcome.FAILED, 3)


def test_a_failed_replica_is_retried_once_on_another_before_the_first_byte(world: World) -> None:
    bad = world.replica(fail_status=500)
    good = world.replica()
    world.tenant()
    url = world.gateway(models=None, eject_after_failures=100)
    world.set_models([_model("m1", world, routing="round-robin")])
    for _ in range(4):
        assert _post(url).status_code == 200
    assert bad.requests >= 1
    assert good.requests == 4
    events = world.wait_events(4)
    assert {e.replica for e in events} == {good.url.split("//")[1]}


def test_all_replicas_failing_is_a_502_and_one_failed_event(world: World) -> None:
    world.replica(fail_status=500)
    world.replica(fail_status=503)
    world.tenant()
    url = world.gateway()
    response = _post(url)
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "server_error"
    (event,) = world.wait_events(1)
    assert (event.outcome, event.completion_tokens) == (Outcome.FAILED, 0)


def test_a_failing_replica_is_ejected_then_readmitted_after_a_good_probe(world: World) -> None:
    bad = world.replica(fail_status=500, healthy=False)
    good = world.replica()
    world.tenant()
    url = world.gateway(eject_after_failures=2)
    world.set_models([_model("m1", world, routing="round-robin")])
    for _ in range(6):
        assert _post(url).status_code == 200
    seen = bad.requests
    assert seen == 2
    for _ in range(4):
        assert _post(url).status_code == 200
    assert bad.requests == seen  # ejected: no more traffic
    bad.fail_status, bad.healthy = None, True
    deadline = time.monotonic() + 5
    while bad.requests == seen and time.monotonic() < deadline:
        _post(url)
        time.sleep(0.05)
    assert bad.requests > seen
    assert good.requests > 0


def test_a_saturated_model_queues_then_serves(world: World) -> None:
    world.replica(latency=0.3)
    world.tenant()
    url = world.gateway(replica_max_in_flight=1, queue_timeout_seconds=5)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(_post(url).status_code)) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    metrics = httpx.get(url + "/metrics").text
    assert 'modelplex_gateway_queue_depth{model="m1"} 2.0' in metrics
    for thread in threads:
        thread.join()
    assert results == [200, 200, 200]


def test_a_model_with_no_ready_replica_waits_for_one(world: World) -> None:
    world.tenant()
    world.replica()
    url = world.gateway(models=[ModelSpec(name="m1")], queue_timeout_seconds=5)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(_post(url).status_code))
    thread.start()
    time.sleep(0.2)
    world.set_models([_model("m1", world)])
    thread.join()
    assert result == [200]


def test_no_replica_by_the_cold_start_deadline_is_503_with_the_expected_time_to_ready(world: World) -> None:
    world.tenant()
    url = world.gateway(
        models=[ModelSpec(name="m1")],
        queue_timeout_seconds=0.1,
        cold_start_timeout_seconds=0.3,
        cold_start_estimate_seconds=45,
    )
    response = _post(url)
    assert response.status_code == 503
    assert 44 <= int(response.headers["retry-after"]) <= 45
    assert response.json()["error"]["code"] == "no_capacity"
    assert world.wait_events(0) == []


def test_a_full_queue_is_503_at_once(world: World) -> None:
    world.tenant()
    url = world.gateway(models=[ModelSpec(name="m1")], queue_max_size=0)
    started = time.monotonic()
    assert _post(url).status_code == 503
    assert time.monotonic() - started < 1


def test_models_lists_only_what_the_tenant_may_use(world: World) -> None:
    world.replica()
    world.tenant("alpha", KEY, allowed_models=frozenset({"open", "shared", "private"}))
    models = [
        _model("open", world),
        _model("shared", world, access=["alpha", "beta"]),
        _model("private", world, access=["beta"]),
        _model("not-in-plan", world),
    ]
    url = world.gateway(models=models)
    listed = httpx.get(url + "/v1/models", headers=AUTH).json()
    assert sorted(m["id"] for m in listed["data"]) == ["open", "shared"]
    assert _post(url, {**CHAT, "model": "private"}).status_code == 403
    assert _post(url, {**CHAT, "model": "not-in-plan"}).status_code == 403
    assert _post(url, {**CHAT, "model": "shared"}).status_code == 200


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_every_error_status(world: World) -> None:
    world.replica()
    world.tenant()
    world.tenant("suspended", "mpx-suspended", suspended=True)
    world.tenant("rpm", "mpx-rpm", requests_per_minute=1)
    world.tenant("broke", "mpx-broke", monthly_token_budget=10)
    world.authority.set_used("broke", 10)
    url = world.gateway(max_body_bytes=1000)
    assert _post(url, headers={}).status_code == 401
    assert _post(url, headers={"authorization": "Bearer mpx-nope"}).status_code == 401
    world.tenant("revoked", "mpx-revoked")
    world.authority.revoke("mpx-revoked")
    assert _post(url, headers={"authorization": "Bearer mpx-revoked"}).status_code == 401
    assert _error(_post(url, headers={"authorization": "Bearer mpx-suspended"}))["code"] == "tenant_suspended"
    assert _error(_post(url, {**CHAT, "model": "nope"}))["code"] == "model_not_found"
    bad = httpx.post(url + "/v1/chat/completions", content=b"{nope", headers=AUTH)
    assert bad.status_code == 400
    assert _error(bad)["type"] == "invalid_request_error"
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 2000}]}
    assert _post(url, big).status_code == 413
    rpm = {"authorization": "Bearer mpx-rpm"}
    assert _post(url, headers=rpm).status_code == 200
    limited = _post(url, headers=rpm)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert _error(limited)["code"] == "rate_limit_exceeded"
    broke = _post(url, headers={"authorization": "Bearer mpx-broke"})
    assert broke.status_code == 429
    assert _error(broke)["code"] == "insufficient_quota"
    assert broke.headers["x-should-retry"] == "false"
    assert httpx.get(url + "/v1/nope").status_code == 404
    assert httpx.get(url + "/v1/chat/completions").status_code == 405


def test_metrics_count_requests_tokens_and_never_show_keys_or_prompts(world: World) -> None:
    world.replica()
    world.tenant()
    url = world.gateway(metrics_tenant_labels=True)
    _post(url)
    _post(url, headers={"authorization": "Bearer mpx-secret-wrong"})
    world.wait_events(1)
    text = httpx.get(url + "/metrics").text
    assert 'modelplex_gateway_requests_total{code="200",model="m1",tenant="alpha"} 1.0' in text
    assert 'modelplex_gateway_requests_total{code="401",model="-",tenant="-"} 1.0' in text
    assert 'modelplex_gateway_tokens_total{model="m1",tenant="alpha",type="completion"} 6.0' in text
    assert 'modelplex_gateway_in_flight{model="m1"' in text
    assert "modelplex_gateway_time_to_first_token_seconds_count" in text
    assert "modelplex_gateway_journal_backlog_bytes" in text
    for secret in (KEY, "mpx-secret-wrong", "one two three"):
        assert secret not in text


def test_usage_survives_a_down_ledger(world: World) -> None:
    world.replica()
    world.tenant()
    world.sink.failing = True
    url = world.gateway(ship_backoff_max_seconds=0.1)
    for _ in range(5):
        assert _post(url).status_code == 200  # serving does not wait for the ledger
    time.sleep(0.2)
    assert not world.sink.events
    failures = httpx.get(url + "/metrics").text
    assert 'modelplex_gateway_ledger_failures_total{operation="ship"}' in failures
    world.sink.failing = False
    assert len(world.wait_events(5)) == 5
