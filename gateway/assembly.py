"""A non-streaming answer assembled from the engine's stream, as the engine would have sent it whole.

The gateway asks the engine for a stream even when the client did not, so that a client who leaves
early is billed the tokens generated until then (the engine reports usage on every chunk). The client
still gets the ordinary JSON answer: the same members, in the same order, with the same nulls as
vLLM's own non-streaming response (its pydantic models dumped whole, rendered compactly by Starlette).
Requests whose streamed form is not the same answer (tool calls, log-probabilities, echo, token ids)
are not assembled: they go upstream as the client sent them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

# Fields that make a streamed answer differ from the whole one, or that only the whole one carries.
NOT_ASSEMBLED = frozenset(
    {
        "tools",
        "functions",
        "logprobs",
        "top_logprobs",
        "prompt_logprobs",
        "echo",
        "best_of",
        "return_token_ids",
        "return_tokens_as_token_ids",
        "return_prompt_text",
        "kv_transfer_params",
        "ec_transfer_params",
    }
)


def assemblable(body: dict[str, Any]) -> bool:
    return not any(body.get(name) not in (None, False) for name in NOT_ASSEMBLED)


@dataclass(slots=True)
class _Choice:
    parts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    role: str = "assistant"
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass(slots=True)
class Assembler:
    """Collects stream chunks (parsed) and renders the whole answer."""

    chat: bool
    head: dict[str, Any] = field(default_factory=dict)  # id, created, model of the first chunk
    choices: dict[int, _Choice] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    system_fingerprint: str | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if not self.head:
            self.head = {key: chunk.get(key) for key in ("id", "created", "model")}
        if "system_fingerprint" in chunk and chunk["system_fingerprint"] is not None:
            self.system_fingerprint = chunk["system_fingerprint"]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict):
                self._add_choice(choice)

    def _add_choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        held = self.choices.get(index)
        if held is None:
            held = self.choices[index] = _Choice()
        if self.chat:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("role"), str):
                held.role = delta["role"]
            if isinstance(delta.get("content"), str):
                held.parts.append(delta["content"])
            if isinstance(delta.get("reasoning"), str):
                held.reasoning.append(delta["reasoning"])
        elif isinstance(choice.get("text"), str):
            held.parts.append(choice["text"])
        if choice.get("finish_reason") is not None:
            held.finish_reason = choice["finish_reason"]
            held.stop_reason = choice.get("stop_reason")

    def render(self) -> bytes:
        answer = self._chat() if self.chat else self._completion()
        # What Starlette's JSONResponse writes: compact, UTF-8 (the chunks were strict JSON: no NaN).
        return orjson.dumps(answer)

    def _usage(self) -> dict[str, Any]:
        usage = self.usage or {}
        return {
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "prompt_tokens_details": usage.get("prompt_tokens_details"),
            "completion_tokens_details": usage.get("completion_tokens_details"),
        }

    def _chat(self) -> dict[str, Any]:
        choices = []
        for index, held in sorted(self.choices.items()):
            message = {
                "role": held.role,
                "content": "".join(held.parts),
                "refusal": None,
                "annotations": None,
                "audio": None,
                "function_call": None,
                "reasoning": "".join(held.reasoning) if held.reasoning else None,
            }
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": held.finish_reason,
                    "stop_reason": held.stop_reason,
                    "token_ids": None,
                    "routed_experts": None,
                }
            )
        return {
            "id": self.head.get("id"),
            "object": "chat.completion",
            "created": self.head.get("created"),
            "model": self.head.get("model"),
            "choices": choices,
            "service_tier": None,
            "system_fingerprint": self.system_fingerprint,
            "usage": self._usage(),
            "prompt_logprobs": None,
            "prompt_token_ids": None,
            "prompt_text": None,
            "kv_transfer_params": None,
            "ec_transfer_params": None,
            "metrics": None,
        }

    def _completion(self) -> dict[str, Any]:
        choices = [
            {
                "index": index,
                "text": "".join(held.parts),
                "logprobs": None,
                "finish_reason": held.finish_reason,
                "stop_reason": held.stop_reason,
                "token_ids": None,
                "prompt_logprobs": None,
                "prompt_token_ids": None,
                "routed_experts": None,
            }
            for index, held in sorted(self.choices.items())
        ]
        return {
            "id": self.head.get("id"),
            "object": "text_completion",
            "created": self.head.get("created"),
            "model": self.head.get("model"),
            "choices": choices,
            "service_tier": None,
            "system_fingerprint": self.system_fingerprint,
            "usage": self._usage(),
            "kv_transfer_params": None,
            "ec_transfer_params": None,
            "metrics": None,
        }
