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


def test_a_non_stream_body_is_forwarded_byte_for_byte() -> None:
    raw = b'{"model":"m","prompt":"x y"}'
    assert parse(Kind.COMPLETION, raw, 8).upstream_body == raw


@pytest.mark.parametrize(
    ("body", "kind", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, Kind.CHAT, "model"),
        ({"model": "m", "messages": []}, Kind.CHAT, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, Kind.CHAT, "messages"),
        ({"model": "m", "prompt": 3}, Kind.COMPLETION, "prompt"),
        ({"model": "m", "input": "x", "stream": True}, Kind.EMBEDDING, "stream"),
        ({"model": "m", "prompt": "x", "stream": "yes"}, Kind.COMPLETION, "stream"),
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
