"""A fixed-latency OpenAI-compatible backend for gateway benchmarks (vLLM wire format, usage included).

Run: python bench/gateway_backend.py PORT LATENCY_MS
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import uvicorn

CHAT = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "total_tokens": 9, "completion_tokens": 1},
    }
).encode()


def _chunk(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _stream(tokens: int) -> list[bytes]:
    events = []
    for i in range(1, tokens + 1):
        choice = {"index": 0, "delta": {"content": "x"}, "finish_reason": None if i < tokens else "stop"}
        usage = {"prompt_tokens": 8, "total_tokens": 8 + i, "completion_tokens": i}
        events.append(
            _chunk({"id": "c", "object": "chat.completion.chunk", "choices": [choice], "usage": usage})
        )
    final = {"prompt_tokens": 8, "total_tokens": 8 + tokens, "completion_tokens": tokens}
    events.append(_chunk({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": final}))
    events.append(b"data: [DONE]\n\n")
    return events


STREAM = _stream(8)


def make_app(latency: float) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await asyncio.sleep(latency)
        await _answer(send, bool(json.loads(body).get("stream")))

    return app


async def _answer(send: Any, stream: bool) -> None:
    if not stream:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(CHAT)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": CHAT})
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    for event in STREAM:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    port, latency_ms = int(sys.argv[1]), float(sys.argv[2])
    uvicorn.run(
        make_app(latency_ms / 1000),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
