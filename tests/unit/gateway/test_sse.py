import json

import pytest

from modelplex.gateway.sse import EventSplitter, StreamFilter


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _content(i: int, usage: bool) -> dict[str, object]:
    chunk: dict[str, object] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"delta": {"content": "x"}}],
    }
    if usage:
        chunk["usage"] = {"prompt_tokens": 7, "completion_tokens": i, "total_tokens": 7 + i}
    return chunk


FINAL: dict[str, object] = {
    "id": "c",
    "choices": [],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}


def test_splitter_reassembles_events_across_arbitrary_chunks() -> None:
    stream = _event(_content(1, True)) + _event(_content(2, True)) + b"data: [DONE]\n\n"
    splitter = EventSplitter()
    events = [e for i in range(0, len(stream), 7) for e in splitter.feed(stream[i : i + 7])]
    assert events[-1] == b"data: [DONE]\n\n"
    assert b"".join(events) == stream
    assert splitter.rest() == b""


def test_splitter_accepts_crlf() -> None:
    assert EventSplitter().feed(b"data: 1\r\n\r\ndata: 2\r\n\r\n") == [b"data: 1\n\n", b"data: 2\n\n"]


def _run(sse: StreamFilter) -> list[dict[str, object]]:
    events = [_event(_content(1, True)), _event(_content(2, True)), _event(FINAL), b"data: [DONE]\n\n"]
    out = [sse.process(e) for e in events]
    assert out[-1] == b"data: [DONE]\n\n"
    return [json.loads(e[5:]) for e in out[:-1] if e is not None]


def test_filter_strips_all_usage_when_the_client_asked_for_none() -> None:
    sse = StreamFilter(include_usage=False, continuous_usage=False)
    seen = _run(sse)
    assert len(seen) == 2
    assert all("usage" not in chunk for chunk in seen)
    assert (sse.usage.prompt_tokens, sse.usage.completion_tokens, sse.done) == (7, 2, True)


def test_filter_keeps_only_the_final_usage_chunk_for_include_usage() -> None:
    sse = StreamFilter(include_usage=True, continuous_usage=False)
    seen = _run(sse)
    assert ["usage" in chunk for chunk in seen] == [False, False, True]
    assert seen[-1]["choices"] == []


def test_filter_passes_everything_for_continuous_usage() -> None:
    seen = _run(StreamFilter(include_usage=True, continuous_usage=True))
    assert ["usage" in chunk for chunk in seen] == [True, True, True]


@pytest.mark.parametrize("payload", [{"error": {"message": "boom"}}, {"object": "error", "message": "boom"}])
def test_filter_notices_an_engine_error_in_the_stream(payload: dict[str, object]) -> None:
    sse = StreamFilter(include_usage=False, continuous_usage=False)
    assert sse.process(_event(payload)) is not None
    assert sse.failed


def test_filter_reads_cached_tokens() -> None:
    sse = StreamFilter(include_usage=False, continuous_usage=False)
    usage = {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 8}}
    sse.process(_event({"choices": [], "usage": usage}))
    assert sse.usage.cached_tokens == 8


def _compact(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


@pytest.mark.parametrize(("include", "continuous"), [(False, False), (True, False), (True, True)])
def test_compact_chunks_take_the_fast_path_with_the_same_result(include: bool, continuous: bool) -> None:
    tricky = _content(1, True)
    tricky["choices"] = [{"delta": {"content": 'say ,"usage":{"prompt_tokens":99}} and "choices":[]'}}]
    events = [tricky, _content(2, True), FINAL]
    fast = StreamFilter(include_usage=include, continuous_usage=continuous)
    slow = StreamFilter(include_usage=include, continuous_usage=continuous)
    for payload in events:
        quick, full = fast.process(_compact(payload)), slow.process(_event(payload))
        assert (quick is None) == (full is None)
        if quick is not None and full is not None:
            assert json.loads(quick[5:]) == json.loads(full[5:])
    assert (fast.usage.prompt_tokens, fast.usage.completion_tokens) == (7, 2)
    assert fast.usage == slow.usage


def test_usage_that_is_not_the_last_member_is_still_read() -> None:
    sse = StreamFilter(include_usage=False, continuous_usage=False)
    chunk: dict[str, object] = {
        "id": "c",
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        "choices": [{"delta": {}}],
    }
    out = sse.process(_compact(chunk))
    assert out is not None
    assert "usage" not in json.loads(out[5:])
    assert sse.usage.prompt_tokens == 3
