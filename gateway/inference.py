"""Parsing and checking an inference request body, and rewriting it for the upstream engine."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import orjson

from modelplex.gateway.assembly import assemblable
from modelplex.gateway.errors import bad_request

# The gateway always asks the engine for usage on streams; the client gets only what it asked for.
UPSTREAM_STREAM_OPTIONS = {"include_usage": True, "continuous_usage_stats": True}
CHARS_PER_TOKEN = 4  # a deliberately rough estimate; TPM is corrected with the engine's count after


class Kind(enum.StrEnum):
    CHAT = "/v1/chat/completions"
    COMPLETION = "/v1/completions"
    EMBEDDING = "/v1/embeddings"


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    kind: Kind
    model: str
    stream: bool  # the client asked for a stream
    client_include_usage: bool
    client_continuous_usage: bool
    prefix: str  # leading prompt text, hashed by prefix affinity; never logged
    estimated_prompt_tokens: int
    upstream_body: bytes
    # For budget reservations: bounds, not estimates. Every string in the body is inside `raw`, and a
    # tokenizer (byte-level BPE, or sentencepiece with byte fallback) never makes more tokens than bytes.
    body_bytes: int = 0
    prompts: int = 1  # a completion may carry a list of prompts, each answered separately
    max_tokens: int | None = None
    choices: int = 1  # n (or best_of, when larger): sequences generated per prompt
    assembled: bool = False  # not streamed to the client, but streamed from the engine (gateway.assembly)

    @property
    def upstream_streams(self) -> bool:
        return self.stream or self.assembled


def parse(kind: Kind, raw: bytes, prefix_chars: int, assemble_above_tokens: int = 0) -> InferenceRequest:
    """`assemble_above_tokens`: a non-streaming request that may generate more tokens than this is
    streamed from the engine and assembled (gateway.assembly); a shorter one goes upstream as sent."""
    body = _load_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string.", "model")
    stream = _stream_flag(kind, body)
    options = _stream_options(body, stream)
    text = _prompt_text(kind, body)
    upstream = raw
    prompts, max_tokens = _prompt_count(kind, body), _max_tokens(kind, body)
    choices = max(_positive_int(body, "n") or 1, _positive_int(body, "best_of") or 1)
    may_generate = None if max_tokens is None else max_tokens * choices * prompts
    assembled = (
        not stream
        and kind is not Kind.EMBEDDING
        and (may_generate is None or may_generate > assemble_above_tokens)
        and assemblable(body)
    )
    if stream or assembled:
        upstream = _dumps({**body, "stream": True, "stream_options": UPSTREAM_STREAM_OPTIONS})
    return InferenceRequest(
        kind=kind,
        model=model,
        stream=stream,
        client_include_usage=bool(options.get("include_usage", False)),
        client_continuous_usage=bool(options.get("continuous_usage_stats", False)),
        prefix=text[:prefix_chars],
        estimated_prompt_tokens=max(1, -(-len(text) // CHARS_PER_TOKEN)),
        upstream_body=upstream,
        body_bytes=len(raw),
        prompts=prompts,
        max_tokens=max_tokens,
        choices=choices,
        assembled=assembled,
    )


def _dumps(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson writes at most 254 levels of nesting; its parser reads 1,024
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _load_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object (orjson: strict JSON, so no NaN or Infinity; a number too large for a
    double, such as 1e999, is refused; nesting deeper than 1,024 levels is refused, not a crash)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        problem = str(exc)
        if problem.startswith("number is infinity"):
            raise bad_request("The request body has a number that is not finite.") from None
        if problem.startswith("depth limit exceeded"):
            raise bad_request("The request body is nested too deeply.") from None
        raise bad_request(f"The request body is not valid JSON: {problem}.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _positive_int(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(f"'{field}' must be an integer of at least 1.", field)
    return value


def _max_tokens(kind: Kind, body: dict[str, Any]) -> int | None:
    """The completion length the client allows (the smaller of the two names chat accepts)."""
    limits = [_positive_int(body, "max_tokens")]
    if kind is Kind.CHAT:
        limits.append(_positive_int(body, "max_completion_tokens"))
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def _prompt_count(kind: Kind, body: dict[str, Any]) -> int:
    if kind is not Kind.COMPLETION:
        return 1
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and not all(isinstance(p, int) for p in prompt):
        return len(prompt)  # several prompts (strings, or lists of token ids)
    return 1


def _stream_flag(kind: Kind, body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean.", "stream")
    if stream and kind is Kind.EMBEDDING:
        raise bad_request("Embeddings cannot be streamed.", "stream")
    return stream


def _stream_options(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    options = body.get("stream_options")
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", "stream_options")
    if not stream:
        raise bad_request("'stream_options' is only allowed when 'stream' is true.", "stream_options")
    return options


def _prompt_text(kind: Kind, body: dict[str, Any]) -> str:
    if kind is Kind.CHAT:
        return _chat_text(body.get("messages"))
    field = "prompt" if kind is Kind.COMPLETION else "input"
    value = body.get(field)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        return "\n".join(item if isinstance(item, str) else json.dumps(item) for item in value)
    raise bad_request(f"'{field}' must be a string or a non-empty list.", field)


def _chat_text(messages: object) -> str:
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list.", "messages")
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request("Each message must be an object with a 'role'.", "messages")
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)
