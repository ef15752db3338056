"""Fast fake vLLM replicas and an in-process gateway harness, served by real uvicorn on 127.0.0.1.

The fakes speak vLLM's OpenAI-compatible wire format: chat/completions/embeddings, SSE chunks with
`usage` when `stream_options.include_usage` (on every chunk with `continuous_usage_stats`) and a final
usage-only chunk, `data: [DONE]`, `/health`, and `/metrics` with vLLM's metric names. A prompt's token
count is its number of whitespace-separated words; completions are `max_tokens` tokens (default 5).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import pytest
import uvicorn

from modelplex.billing.contracts import PlanLimits, UsageEvent
from modelplex.gateway.app import Gateway
from modelplex.gateway.discovery.base import Catalog, ModelSpec, Publish
from modelplex.gateway.serving import tenant_server
from modelplex.gateway.settings import GatewaySettings
from modelplex.gateway.static_tenants import StaticKeyAuthority, StaticTenant

T = TypeVar("T")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# --------------------------------------------------------------------------------------------- servers


class LoopThread:
    """An asyncio loop in a background thread: hosts uvicorn servers while tests use sync clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="mpxtest-loop")
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class Stoppable(Protocol):
    should_exit: bool
    started: bool


@dataclass
class Served:
    url: str
    server: Stoppable
    task: asyncio.Task[Any]


def free_socket() -> socket.socket:
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so (else Nagle adds ~40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve(
    app: Any,
    lifespan: Literal["auto", "on", "off"] = "off",
    sock: socket.socket | None = None,
    config: uvicorn.Config | None = None,
) -> Served:
    """Serve `app` on `sock` (default: a free loopback port), with `config` (default: plain uvicorn)."""
    sock = sock or free_socket()
    if config is None:
        config = uvicorn.Config(
            app, lifespan=lifespan, log_level="warning", access_log=False, http="httptools"
        )
    server = uvicorn.Server(config)
    return await _started(server, asyncio.ensure_future(server.serve(sockets=[sock])), sock)


async def serve_gateway(app: Gateway, settings: GatewaySettings) -> Served:
    """Serve the gateway as `modelplex gateway run` does: its own server, limits and timeouts."""
    sock = free_socket()
    server = tenant_server(app, settings, sock)
    return await _started(server, asyncio.ensure_future(server.serve()), sock)


async def _started(server: Stoppable, task: asyncio.Task[Any], sock: socket.socket) -> Served:
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.005)
    host, port = sock.getsockname()
    return Served(f"http://{host}:{port}", server, task)


async def shutdown(served: Served) -> None:
    served.server.should_exit = True
    await asyncio.wait_for(served.task, 30)


# ----------------------------------------------------------------------------------------- fake engine


@dataclass
class FakeReplica:
    """One fake vLLM engine. The knobs may be changed by tests at any time."""

    model: str
    latency: float = 0.0  # before the first token
    token_delay: float = 0.0  # between tokens
    fail_status: int | None = None  # answer every request with this status
    die_after_tokens: int | None = None  # close the stream abruptly after this many tokens
    linger_after_done: float = 0.0  # seconds between sending `data: [DONE]` and ending the response
    healthy: bool = True  # /health
    waiting: int = 0  # reported in /metrics
    requests: int = 0
    running: int = 0
    prompt_tokens_total: int = 0
    generation_tokens_total: int = 0
    aborted: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[bytes, bytes]] = field(default_factory=list)  # of each request, as received
    answer_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # added to stream answers
    generated: dict[str, int] = field(default_factory=dict)  # tokens per x-request-id
    url: str = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET":
            await self._get(path, send)
            return
        body = await _read(receive)
        self.requests += 1
        self.bodies.append(body)
        self.headers.append(dict(scope["headers"]))
        request_id = dict(scope["headers"]).get(b"x-request-id", b"").decode()
        self.generated[request_id] = 0
        if self.fail_status is not None:
            await _json(
                send, self.fail_status, {"object": "error", "message": "injected", "type": "X", "code": 500}
            )
            return
        self.running += 1
        try:
            await self._infer(path, body, request_id, send, receive)
        finally:
            self.running -= 1

    async def _get(self, path: str, send: Send) -> None:
        if path == "/health":
            await _json(send, 200 if self.healthy else 503, {})
        elif path == "/metrics":
            await _text(send, self.metrics_text())
        elif path == "/v1/models":
            await _json(send, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
        else:
            await _json(send, 404, {"detail": "Not Found"})

    def metrics_text(self) -> str:
        label = f'{{engine="0",model_name="{self.model}"}}'
        return "\n".join(
            [
                "# HELP vllm:num_requests_running Number of requests in model execution batches.",
                "# TYPE vllm:num_requests_running gauge",
                f"vllm:num_requests_running{label} {float(self.running)}",
                "# TYPE vllm:num_requests_waiting gauge",
                f"vllm:num_requests_waiting{label} {float(self.waiting)}",
                "# TYPE vllm:kv_cache_usage_perc gauge",
                f"vllm:kv_cache_usage_perc{label} {min(1.0, self.running / 64)}",
                "# TYPE vllm:prompt_tokens_total counter",
                f"vllm:prompt_tokens_total{label} {float(self.prompt_tokens_total)}",
                "# TYPE vllm:generation_tokens_total counter",
                f"vllm:generation_tokens_total{label} {float(self.generation_tokens_total)}",
                "",
            ]
        )

    async def _infer(
        self, path: str, body: dict[str, Any], request_id: str, send: Send, receive: Receive
    ) -> None:
        prompt = prompt_tokens(path, body)
        self.prompt_tokens_total += prompt
        if self.latency:
            await asyncio.sleep(self.latency)
        if path == "/v1/embeddings":
            await _json(send, 200, _embedding(body, prompt))
            return
        n = int(body.get("max_tokens") or body.get("max_completion_tokens") or 5)
        if body.get("stream"):
            await self._stream(path, body, prompt, n, request_id, send, receive)
            return
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            for _ in range(n):
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
                if gone.done():  # like vLLM: a closed connection aborts the request
                    self.aborted += 1
                    return
                self._generated(request_id)
        finally:
            gone.cancel()
        await _json(send, 200, _completion(path, body, prompt, n))

    def _generated(self, request_id: str) -> None:
        self.generation_tokens_total += 1
        self.generated[request_id] += 1

    async def _stream(
        self,
        path: str,
        body: dict[str, Any],
        prompt: int,
        n: int,
        request_id: str,
        send: Send,
        receive: Receive,
    ) -> None:
        options = body.get("stream_options") or {}
        usage_on, continuous = bool(options.get("include_usage")), bool(options.get("continuous_usage_stats"))
        gone = asyncio.ensure_future(_disconnect(receive))
        ident, created, chat = (
            f"chatcmpl-{uuid.uuid4().hex}",
            int(time.time()),
            path == "/v1/chat/completions",
        )
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), *self.answer_headers]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            for i in range(n + 1):  # chat: a role chunk first; completions: n text chunks + finish
                if i and self.die_after_tokens is not None and i > self.die_after_tokens:
                    raise ConnectionAbortedError("fake engine died")
                if self.token_delay and i:
                    await asyncio.sleep(self.token_delay)
                if gone.done():  # like vLLM: what it counts, it sends, until it sees the client gone
                    self.aborted += 1
                    return
                if i:
                    self._generated(request_id)
                chunk = _chunk(ident, created, body["model"], chat, i, n)
                if usage_on and continuous:
                    chunk["usage"] = _usage(prompt, i)
                await _event(send, chunk)
            if usage_on:
                final = {
                    "id": ident,
                    "object": _chunk_object(chat),
                    "created": created,
                    "model": body["model"],
                }
                await _event(send, {**final, "choices": [], "usage": _usage(prompt, n)})
            if self.linger_after_done:
                await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
                await asyncio.sleep(self.linger_after_done)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
        finally:
            gone.cancel()


def prompt_tokens(path: str, body: dict[str, Any]) -> int:
    if path == "/v1/chat/completions":
        return sum(len(str(m.get("content", "")).split()) for m in body["messages"])
    value = body.get("prompt" if path == "/v1/completions" else "input")
    items = value if isinstance(value, list) else [value]
    return sum(len(str(item).split()) for item in items)


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion}


def _chunk_object(chat: bool) -> str:
    return "chat.completion.chunk" if chat else "text_completion"


def _chunk(ident: str, created: int, model: str, chat: bool, i: int, n: int) -> dict[str, Any]:
    finish = "length" if i == n else None
    if chat:
        delta = {"role": "assistant", "content": ""} if i == 0 else {"content": f"tok{i} "}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    else:
        text = "" if i == 0 else f"tok{i} "
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None}
    return {
        "id": ident,
        "object": _chunk_object(chat),
        "created": created,
        "model": model,
        "choices": [choice],
    }


def _completion(path: str, body: dict[str, Any], prompt: int, n: int) -> dict[str, Any]:
    text = "".join(f"tok{i} " for i in range(1, n + 1))
    if path == "/v1/chat/completions":
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "tool_calls": []}
        choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None, "finish_reason": "length"}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length", "stop_reason": None}
        kind = "text_completion"
    usage = {**_usage(prompt, n), "prompt_tokens_details": None}
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": body["model"],
        "choices": [choice],
        "usage": usage,
    }


def _embedding(body: dict[str, Any], prompt: int) -> dict[str, Any]:
    items = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = [{"index": i, "object": "embedding", "embedding": [0.1, 0.2, 0.3]} for i in range(len(items))]
    return {
        "id": f"embd-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": body["model"],
        "data": data,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt, "completion_tokens": 0},
    }


async def _read(receive: Receive) -> dict[str, Any]:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return dict(json.loads(b"".join(chunks)))


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _event(send: Send, chunk: dict[str, Any]) -> None:
    data = b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


async def _text(send: Send, text: str) -> None:
    headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})


# ------------------------------------------------------------------------------------- ledger fakes


class MemorySink:
    """An in-memory UsageSink, idempotent by request_id; `failing` makes ingest raise."""

    def __init__(self) -> None:
        self.events: dict[str, UsageEvent] = {}
        self.batches = 0
        self.failing = False

    async def ingest(self, events: Any) -> int:
        if self.failing:
            raise ConnectionError("ledger down")
        self.batches += 1
        new = [e for e in events if e.request_id not in self.events]
        self.events.update((e.request_id, e) for e in new)
        return len(new)


class MemoryDiscovery:
    """A discovery source whose catalog tests set directly."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._publish: Publish | None = None

    async def run(self, publish: Publish) -> None:
        self._publish = publish
        await publish(self.catalog)
        await asyncio.Event().wait()

    async def set(self, catalog: Catalog) -> None:
        self.catalog = catalog
        if self._publish is not None:
            await self._publish(catalog)


# ---------------------------------------------------------------------------------------- the world

KEY = "mpx-test-alpha"


@dataclass
class World:
    """Fake replicas, an in-memory ledger and a real uvicorn-served gateway, all on one loop thread."""

    loop: LoopThread
    tmp: Path
    authority: StaticKeyAuthority = field(default_factory=StaticKeyAuthority)
    sink: MemorySink = field(default_factory=MemorySink)
    replicas: list[FakeReplica] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)
    discovery: MemoryDiscovery | None = None

    def replica(self, model: str = "m1", **knobs: Any) -> FakeReplica:
        fake = FakeReplica(model, **knobs)
        served = self.loop.run(serve(fake))
        fake.url = served.url
        self.served.append(served)
        self.replicas.append(fake)
        return fake

    def tenant(self, name: str = "alpha", key: str = KEY, **limits: Any) -> str:
        suspended = bool(limits.pop("suspended", False))
        self.authority.put(
            StaticTenant(name=name, keys=(key,), suspended=suspended, limits=PlanLimits(**limits))
        )
        return key

    def gateway(self, models: list[ModelSpec] | None = None, **settings: Any) -> str:
        """Start a gateway on the given models (default: every fake replica serves model 'm1'); its URL."""
        if models is None:
            endpoints = [{"url": r.url} for r in self.replicas]
            models = [ModelSpec.model_validate({"name": "m1", "endpoints": endpoints})]
        defaults: dict[str, Any] = {
            "journal_dir": self.tmp / f"journal-{len(self.gateways)}",
            "ship_interval_seconds": 0.02,
            "scrape_interval_seconds": 0,
            "probe_interval_seconds": 0.1,
        }
        config = GatewaySettings(**{**defaults, **settings})
        self.discovery = MemoryDiscovery(Catalog(models=tuple(models)))
        app = Gateway(config, self.authority, self.sink, self.discovery)
        self.gateways.append(app)
        served = self.loop.run(serve_gateway(app, config))
        self.served.append(served)
        return served.url

    def set_models(self, models: list[ModelSpec]) -> None:
        assert self.discovery is not None
        self.loop.run(self.discovery.set(Catalog(models=tuple(models))))

    def wait_events(self, count: int, timeout: float = 10) -> list[UsageEvent]:
        deadline = time.monotonic() + timeout
        while len(self.sink.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.sink.events.values())

    def close(self) -> None:
        for served in reversed(self.served):
            self.loop.run(shutdown(served), timeout=60)
        self.loop.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(LoopThread(), tmp_path)
    try:
        yield world
    finally:
        world.close()
