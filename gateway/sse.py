"""Server-sent events from the engine: split into events, read usage, strip what the client did not ask."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

DONE = b"[DONE]"
USAGE_MEMBER = b',"usage":{'
NO_CHOICES = b'"choices":[]'


class EventSplitter:
    """Turns arbitrary byte chunks into whole SSE events (each with its blank-line terminator)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._buffer + chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        events: list[bytes] = []
        start = 0
        while (end := data.find(b"\n\n", start)) != -1:
            events.append(data[start : end + 2])
            start = end + 2
        self._buffer = data[start:]
        return events

    def rest(self) -> bytes:
        return self._buffer


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    seen: bool = False

    def update(self, usage: dict[str, Any]) -> None:
        """Engine usage is cumulative: the latest report replaces the earlier ones."""
        self.prompt_tokens = _int(usage.get("prompt_tokens"))
        self.completion_tokens = _int(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        self.cached_tokens = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
        self.seen = True


@dataclass(slots=True)
class StreamFilter:
    """Reads the engine's usage from every event and returns what the client should see (or None)."""

    include_usage: bool
    continuous_usage: bool
    usage: Usage = field(default_factory=Usage)
    failed: bool = False  # the engine reported an error inside the stream
    done: bool = False

    def process(self, event: bytes) -> bytes | None:
        payload = event_data(event)
        if payload is None:
            return event
        if payload == DONE:
            self.done = True
            return event
        if b'"usage"' not in payload and b'"error"' not in payload:
            return event
        if b'"error"' not in payload and (split := _split_usage(payload)) is not None:
            return self._filter_split(*split, event)
        try:
            chunk = orjson.loads(payload)
        except ValueError:
            return event
        if not isinstance(chunk, dict):
            return event
        return self._filter(chunk, event)

    def _filter_split(self, rest: bytes, usage: dict[str, Any], event: bytes) -> bytes | None:
        self.usage.update(usage)
        if NO_CHOICES in rest:  # the final usage-only chunk
            return event if self.include_usage else None
        if self.include_usage and self.continuous_usage:
            return event
        return b"data: " + rest + b"\n\n"

    def _filter(self, chunk: dict[str, Any], event: bytes) -> bytes | None:
        if "error" in chunk or chunk.get("object") == "error":
            self.failed = True
            return event
        usage = chunk.get("usage")
        if not isinstance(usage, dict):
            return event
        self.usage.update(usage)
        if not chunk.get("choices"):  # the final usage-only chunk
            return event if self.include_usage else None
        if self.include_usage and self.continuous_usage:
            return event
        del chunk["usage"]
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _split_usage(payload: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """The chunk without its usage, and the usage, when usage is the last member of a compact object
    (how vLLM writes every chunk): only the small usage object is parsed and nothing is re-serialised.
    None when the chunk has another shape (then it is parsed whole)."""
    at = payload.rfind(USAGE_MEMBER)
    if at < 0 or not payload.endswith(b"}}"):
        return None
    try:  # a quote inside a JSON string is escaped, so the member found is a real one
        usage = orjson.loads(payload[at + len(USAGE_MEMBER) - 1 : -1])
    except ValueError:  # not one object up to the end: usage was not the last member
        return None
    if not isinstance(usage, dict):
        return None
    return payload[:at] + b"}", usage


def event_data(event: bytes) -> bytes | None:
    """The data of a single-line `data:` event (what OpenAI-compatible engines send); None otherwise."""
    if not event.startswith(b"data:"):
        return None
    return event[5:].strip()


def _int(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
