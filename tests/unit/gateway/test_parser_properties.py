"""Property-based tests: whatever a client sends, the body parser answers a request or a 400; whatever
chunking the network does, the SSE splitter and the usage reader see the same events."""

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from modelplex.gateway.errors import GatewayError
from modelplex.gateway.inference import Kind, parse
from modelplex.gateway.sse import EventSplitter, StreamFilter

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = ["model", "messages", "prompt", "input", "stream", "stream_options", "max_tokens", "n", "best_of"]
BODIES = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), JSON, max_size=8)


def _parses_or_400(kind: Kind, raw: bytes) -> None:
    refused: GatewayError | None = None
    try:
        request = parse(kind, raw, 16)
    except GatewayError as error:
        refused = error
    if refused is not None:
        assert (refused.status, refused.type) == (400, "invalid_request_error")
        return
    assert request.model
    assert request.estimated_prompt_tokens >= 1
    assert json.loads(request.upstream_body)["model"] == request.model


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Kind)), BODIES)
def test_any_json_object_is_a_request_or_a_400(kind: Kind, body: dict[str, Any]) -> None:
    _parses_or_400(kind, json.dumps(body).encode())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Kind)), st.binary(max_size=200))
def test_any_bytes_are_a_request_or_a_400(kind: Kind, raw: bytes) -> None:
    _parses_or_400(kind, raw)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=50_000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_a_400_not_a_crash(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = ('{"model":"m","prompt":"x","extra":' + opener * depth + "1" + closer * depth + "}").encode()
    _parses_or_400(Kind.COMPLETION, raw)


EVENT = st.builds(
    lambda usage, text: (
        "data: "
        + json.dumps(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": text}}],
            }
            | ({"usage": usage} if usage else {}),
            separators=(",", ":"),
        )
        + "\n\n"
    ),
    st.none()
    | st.fixed_dictionaries(
        {"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**6)}
    ),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENT, max_size=12), st.lists(st.integers(min_value=1, max_value=64), max_size=30))
def test_events_come_out_whole_and_in_order_however_the_bytes_are_cut(
    events: list[str], cuts: list[int]
) -> None:
    stream = ("".join(events) + "data: [DONE]\n\n").encode()
    splitter, out, at = EventSplitter(), [], 0
    for size in [*cuts, len(stream)]:
        out += splitter.feed(stream[at : at + size])
        at += size
    assert b"".join(out) == stream
    assert splitter.rest() == b""

    usage_filter = StreamFilter(include_usage=False, continuous_usage=False)
    for event in out:
        usage_filter.process(event)
    reported = [json.loads(e[6:])["usage"] for e in events if '"usage"' in e]
    assert usage_filter.done
    if reported:
        assert usage_filter.usage.prompt_tokens == reported[-1]["prompt_tokens"]
        assert usage_filter.usage.completion_tokens == reported[-1]["completion_tokens"]
    else:
        assert not usage_filter.usage.seen


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_the_usage_reader_takes_any_bytes_without_raising(event: bytes) -> None:
    StreamFilter(include_usage=True, continuous_usage=False).process(b"data: " + event + b"\n\n")
