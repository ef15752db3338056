"""The official `openai` client against the gateway (real uvicorn on 127.0.0.1): results and error types."""

import asyncio
import threading
import time

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelplex.gateway.discovery.base import ModelSpec
from mpxtest.upstream import KEY, World

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "one two three"}]


def _client(url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def test_sync_async_and_streaming_calls_are_metered_exactly(world: World) -> None:
    replica = world.replica()
    world.tenant()
    url = world.gateway()
    client = _client(url)
    answer = client.chat.completions.create(model="m1", messages=MESSAGES, max_tokens=4)
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 4
    stream = client.chat.completions.create(
        model="m1",
        messages=MESSAGES,
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])

    async def async_call() -> int:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as aclient:
            result = await aclient.completions.create(model="m1", prompt="a b", max_tokens=2)
            assert result.usage is not None
            return result.usage.completion_tokens

    assert asyncio.run(async_call()) == 2
    assert [m.id for m in client.models.list()] == ["m1"]
    events = world.wait_events(3)
    assert sum(e.prompt_tokens for e in events) == replica.prompt_tokens_total
    assert sum(e.completion_tokens for e in events) == replica.generation_tokens_total == 9


@pytest.mark.parametrize(
    ("key", "model", "error"),
    [
        ("mpx-wrong", "m1", openai.AuthenticationError),
        ("mpx-suspended", "m1", openai.PermissionDeniedError),
        ("mpx-limited", "private", openai.PermissionDeniedError),
        (KEY, "missing", openai.NotFoundError),
        ("mpx-broke", "m1", openai.RateLimitError),
    ],
)
def test_errors_are_the_clients_normal_types(
    world: World, key: str, model: str, error: type[Exception]
) -> None:
    world.replica()
    world.tenant()
    world.tenant("suspended", "mpx-suspended", suspended=True)
    world.tenant("limited", "mpx-limited", allowed_models=frozenset({"m1"}))
    world.tenant("broke", "mpx-broke", monthly_token_budget=5)
    world.authority.set_used("broke", 5)
    endpoints = [{"url": world.replicas[0].url}]
    models = [ModelSpec.model_validate({"name": n, "endpoints": endpoints}) for n in ("m1", "private")]
    url = world.gateway(models=models)
    with pytest.raises(error):
        _client(url, key).chat.completions.create(model=model, messages=MESSAGES)


def test_bad_request_rate_limit_too_large_and_no_capacity(world: World) -> None:
    world.tenant()
    world.tenant("rpm", "mpx-rpm", requests_per_minute=1)
    world.replica()
    url = world.gateway(max_body_bytes=2000, queue_timeout_seconds=0.2, replica_max_in_flight=1)
    client = _client(url)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m1", messages=[])
    with pytest.raises(openai.APIStatusError) as too_large:
        client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x" * 3000}])
    assert too_large.value.status_code == 413
    limited = _client(url, "mpx-rpm")
    limited.chat.completions.create(model="m1", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as caught:
        limited.chat.completions.create(model="m1", messages=MESSAGES)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    world.replicas[0].latency = 1.0
    slow = _client(url).with_options(timeout=10)
    thread = threading.Thread(target=lambda: slow.chat.completions.create(model="m1", messages=MESSAGES))
    thread.start()
    time.sleep(0.1)
    with pytest.raises(openai.InternalServerError) as busy:
        client.chat.completions.create(model="m1", messages=MESSAGES)
    assert busy.value.status_code == 503
    thread.join()
