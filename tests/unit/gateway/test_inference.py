import json

import pytest

from modelplex.gateway.errors import GatewayError
from modelplex.gateway.inference import UPSTREAM_STREAM_OPTIONS, Kind, parse


def _parse(body: object, kind: Kind = Kind.CHAT) -> object:
    return parse(kind, json.dumps(body).encode(), 16)


def test_a_stream_asks_the_engine_for_usage_and_remembers_what_the_client_asked() -> None:
    raw = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hello world " * 10}]}
    request = parse(Kind.CHAT, json.dumps(raw).encode(), 16)
    assert json.loads(request.upstream_body)["stream_options"] == UPSTREAM_STREAM_OPTIONS
    assert not request.client_include_usage
    assert request.prefix == ("hello world " * 10)[:16]
    assert request.estimated_prompt_tokens == 30


def test_a_non_stream_answer_is_asked_of_the_engine_as_a_stream_with_usage() -> None:
    request = parse(Kind.COMPLETION, b'{"model":"m","prompt":"x y","max_tokens":3}', 8)
    assert (request.stream, request.assembled, request.upstream_streams) == (False, True, True)
    upstream = json.loads(request.upstream_body)
    assert upstream == {
        "model": "m",
        "prompt": "x y",
        "max_tokens": 3,
        "stream": True,
        "stream_options": UPSTREAM_STREAM_OPTIONS,
    }


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b'{"model":"m","input":"x y"}', Kind.EMBEDDING),
        (b'{"model":"m","prompt":"x y","echo":true}', Kind.COMPLETION),
        (b'{"model":"m","prompt":"x","logprobs":2}', Kind.COMPLETION),
        (b'{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{}]}', Kind.CHAT),
    ],
)
def test_what_a_stream_would_answer_differently_is_forwarded_byte_for_byte(raw: bytes, kind: Kind) -> None:
    request = parse(kind, raw, 8)
    assert (request.assembled, request.upstream_streams, request.upstream_body) == (False, False, raw)


def test_reservation_bounds_are_read_from_the_body() -> None:
    raw = b'{"model":"m","prompt":["a","b"],"max_tokens":7,"n":2,"max_completion_tokens":3}'
    request = parse(Kind.COMPLETION, raw, 8)
    assert (request.body_bytes, request.prompts, request.max_tokens, request.choices) == (len(raw), 2, 7, 2)
    both = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 7}
    chat = json.dumps({**both, "max_completion_tokens": 3}).encode()
    assert parse(Kind.CHAT, chat, 8).max_tokens == 3  # chat takes the smaller of the two
    assert parse(Kind.COMPLETION, b'{"model":"m","prompt":[1,2,3]}', 8).prompts == 1  # token ids


@pytest.mark.parametrize(
    ("body", "kind", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, Kind.CHAT, "model"),
        ({"model": "m", "messages": []}, Kind.CHAT, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, Kind.CHAT, "messages"),
        ({"model": "m", "prompt": 3}, Kind.COMPLETION, "prompt"),
        ({"model": "m", "input": "x", "stream": True}, Kind.EMBEDDING, "stream"),
        ({"model": "m", "prompt": "x", "stream": "yes"}, Kind.COMPLETION, "stream"),
        ({"model": "m", "prompt": "x", "max_tokens": 0}, Kind.COMPLETION, "max_tokens"),
        ({"model": "m", "prompt": "x", "max_tokens": True}, Kind.COMPLETION, "max_tokens"),
        ({"model": "m", "prompt": "x", "max_tokens": 2.5}, Kind.COMPLETION, "max_tokens"),
        ({"model": "m", "prompt": "x", "n": -1}, Kind.COMPLETION, "n"),
        (
            {"model": "m", "prompt": "x", "stream_options": {"include_usage": True}},
            Kind.COMPLETION,
            "stream_options",
        ),
    ],
)
def test_bad_fields_are_400_naming_the_field(body: object, kind: Kind, param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        _parse(body, kind)
    assert (caught.value.status, caught.value.param) == (400, param)


@pytest.mark.parametrize("raw", [b"{", b"[]", b"\xff"])
def test_malformed_json_is_400(raw: bytes) -> None:
    with pytest.raises(GatewayError) as caught:
        parse(Kind.CHAT, raw, 8)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("extra", "assembled"),
    [
        ({"max_tokens": 256}, False),
        ({"max_tokens": 257}, True),
        ({"max_tokens": 200, "n": 2}, True),  # up to 400 tokens generated
        ({}, True),  # no bound: as long as the context allows
        ({"max_tokens": 1000, "logprobs": True}, False),  # a streamed answer would differ
    ],
)
def test_only_requests_that_may_generate_more_than_the_threshold_are_assembled(
    extra: dict[str, object], assembled: bool
) -> None:
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}).encode()
    request = parse(Kind.CHAT, raw, 16, assemble_above_tokens=256)
    assert request.assembled is assembled
    assert (request.upstream_body == raw) is not assembled
