"""Assembling a whole answer from stream chunks, in vLLM's non-streaming layout."""

import json
from typing import Any

import httpx

from modelplex.billing.contracts import Outcome
from modelplex.gateway.assembly import Assembler, assemblable
from mpxtest.upstream import KEY, World

AUTH = {"authorization": f"Bearer {KEY}"}


def _chat_chunk(index: int, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish, **extra}
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 5, "model": "m"}
    return {**head, "choices": [choice]}


def test_interleaved_choices_come_out_in_index_order_with_their_own_ends() -> None:
    assembler = Assembler(chat=True)
    for chunk in [
        _chat_chunk(1, {"role": "assistant", "content": ""}),
        _chat_chunk(0, {"role": "assistant", "content": ""}),
        _chat_chunk(0, {"content": "Hé"}),
        _chat_chunk(1, {"content": "Yo", "reasoning": "think"}),
        _chat_chunk(1, {"content": "!"}, "stop", stop_reason="!"),
        _chat_chunk(0, {"content": " là"}, "length", stop_reason=None),
        {
            "id": "chatcmpl-1",
            "choices": [],
            "usage": {"prompt_tokens": 3, "total_tokens": 7, "completion_tokens": 4},
            "system_fingerprint": "fp",
        },
    ]:
        assembler.add(chunk)
    raw = assembler.render()
    assert "Hé là".encode() in raw  # UTF-8, not \\u escapes, as vLLM writes it
    answer = json.loads(raw)
    assert list(answer) == [
        "id", "object", "created", "model", "choices", "service_tier", "system_fingerprint", "usage",
        "prompt_logprobs", "prompt_token_ids", "prompt_text", "kv_transfer_params", "ec_transfer_params",
        "metrics",
    ]  # fmt: skip
    first, second = answer["choices"]
    assert (first["index"], first["message"]["content"], first["finish_reason"]) == (0, "Hé là", "length")
    assert first["message"]["reasoning"] is None
    assert (second["message"]["content"], second["message"]["reasoning"]) == ("Yo!", "think")
    assert (second["finish_reason"], second["stop_reason"]) == ("stop", "!")
    assert answer["usage"] == {
        "prompt_tokens": 3,
        "total_tokens": 7,
        "completion_tokens": 4,
        "prompt_tokens_details": None,
        "completion_tokens_details": None,
    }
    assert (answer["object"], answer["system_fingerprint"], answer["created"]) == ("chat.completion", "fp", 5)


def test_what_is_assembled() -> None:
    assert assemblable({"model": "m", "prompt": "x", "logprobs": None, "echo": False})
    assert not assemblable({"model": "m", "prompt": "x", "logprobs": 1})
    assert not assemblable({"model": "m", "messages": [], "tools": [{"type": "function"}]})


def test_an_engine_dying_under_a_non_streaming_request_is_a_502_billed_for_what_it_generated(
    world: World,
) -> None:
    world.replica(die_after_tokens=3)
    world.tenant()
    url = world.gateway(assemble_above_tokens=0)  # every non-streaming request assembled
    body = {"model": "m1", "messages": [{"role": "user", "content": "a b"}], "max_tokens": 10}
    response = httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    (event,) = world.wait_events(1)
    assert (event.outcome, event.prompt_tokens, event.completion_tokens) == (Outcome.FAILED, 2, 3)
