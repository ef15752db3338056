"""The Kubernetes transport against a small aiohttp server: paths, errors and the renewal after a 401."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from modelplex.kube.client import KubeClient
from modelplex.kube.credentials import KubeCredentials
from modelplex.kube.errors import ApiError, Gone

Reply = Callable[[web.Request], web.Response]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    authorization: str
    body: Any


@dataclass
class Tokens:
    """Hands out `first`, then `second` once renewed."""

    current: str = "first"
    renewed: list[str | None] = field(default_factory=list)

    def token(self) -> str | None:
        return self.current

    def renew(self, refused: str | None) -> None:
        self.renewed.append(refused)
        self.current = "second"


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message}
    return web.json_response(body, status=code)


def _serve(
    reply: Reply, scenario: Callable[[KubeClient], Awaitable[None]], tokens: Tokens | None = None
) -> list[Seen]:
    """Runs `scenario` with a client of a server at a path prefix; what the server was sent."""
    seen: list[Seen] = []

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        headers = request.headers
        seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                headers.get("Content-Type", ""),
                headers.get("Authorization", ""),
                body,
            )
        )
        return reply(request)

    async def run() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        credentials = KubeCredentials(
            f"http://127.0.0.1:{server.port}/k8s/clusters/c-1", tokens=tokens or Tokens()
        )
        try:
            async with KubeClient(credentials, 5) as kube:
                await scenario(kube)
        finally:
            await server.close()

    asyncio.run(run())
    return seen


def _ok(request: web.Request) -> web.Response:
    return web.json_response({"kind": "Thing", "metadata": {"name": "x"}})


def test_a_refused_token_is_renewed_once_and_the_request_sent_again() -> None:
    tokens = Tokens()

    def only_second(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer second":
            return _status(401, "Unauthorized", "Unauthorized")
        return _ok(request)

    async def scenario(kube: KubeClient) -> None:
        assert (await kube.get("/api/v1/nodes"))["kind"] == "Thing"

    seen = _serve(only_second, scenario, tokens)
    assert [s.authorization for s in seen] == ["Bearer first", "Bearer second"]
    assert tokens.renewed == ["first"]


def test_a_token_refused_after_renewal_is_an_error_not_a_loop() -> None:
    tokens = Tokens()

    async def scenario(kube: KubeClient) -> None:
        with pytest.raises(ApiError) as refused:
            await kube.patch_status("ns", "m", {"phase": "x"})
        assert (refused.value.status, refused.value.reason) == (401, "Unauthorized")

    seen = _serve(lambda _: _status(401, "Unauthorized", "Unauthorized"), scenario, tokens)
    assert len(seen) == 2
    assert seen[1].body == {"status": {"phase": "x"}}  # the body is sent again, whole
    assert tokens.renewed == ["first"]


def test_errors_carry_the_status_reason_and_message() -> None:
    replies = iter(
        [
            _status(409, "Conflict", 'Operation cannot be fulfilled on services "a"'),
            web.Response(status=502, text="upstream went away\n"),
            _status(410, "Expired", "too old resource version: 1 (20)"),
        ]
    )

    async def scenario(kube: KubeClient) -> None:
        with pytest.raises(ApiError) as conflict:
            await kube.get("/api/v1/namespaces/ns/services/a")
        assert (conflict.value.status, conflict.value.reason) == (409, "Conflict")
        assert conflict.value.message == 'Operation cannot be fulfilled on services "a"'
        assert str(conflict.value) == 'HTTP 409 Conflict: Operation cannot be fulfilled on services "a"'
        with pytest.raises(ApiError) as proxy:  # not a Status: the reason the code stands for
            await kube.get("/api/v1/nodes")
        assert (proxy.value.status, proxy.value.reason, proxy.value.message) == (
            502,
            "BadGateway",
            "upstream went away",
        )
        with pytest.raises(Gone):
            await kube.get("/api/v1/nodes")

    _serve(lambda _: next(replies), scenario)


def test_writes_go_to_the_paths_under_the_servers_prefix() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-0"}, "status": {}}
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"}}

    async def scenario(kube: KubeClient) -> None:
        await kube.apply(node, "me", subresource="status")
        await kube.create(event)
        await kube.patch_scale("modelplex.dev/v1alpha1", "ModelDeployment", "ns", "m", 3)
        await kube.delete("apps/v1", "Deployment", "ns", "d")

    seen = _serve(_ok, scenario)
    prefix = "/k8s/clusters/c-1"
    assert [(s.method, s.path, s.content_type) for s in seen] == [
        ("PATCH", f"{prefix}/api/v1/nodes/n-0/status", "application/apply-patch+yaml"),
        ("POST", f"{prefix}/api/v1/namespaces/ns/events", "application/json"),
        (
            "PATCH",
            f"{prefix}/apis/modelplex.dev/v1alpha1/namespaces/ns/modeldeployments/m/scale",
            "application/merge-patch+json",
        ),
        ("DELETE", f"{prefix}/apis/apps/v1/namespaces/ns/deployments/d", "application/json"),
    ]
    assert seen[0].query == {"fieldManager": "me", "force": "true"}
    assert seen[0].body == node
    assert seen[2].body == {"spec": {"replicas": 3}}
    assert seen[3].body == {"propagationPolicy": "Background"}


def test_deleting_what_is_gone_already_is_fine_other_errors_are_raised() -> None:
    replies = iter([_status(404, "NotFound", "not found"), _status(403, "Forbidden", "no")])

    async def scenario(kube: KubeClient) -> None:
        await kube.delete("v1", "Service", "ns", "a")
        with pytest.raises(ApiError) as forbidden:
            await kube.delete("v1", "Service", "ns", "b")
        assert forbidden.value.reason == "Forbidden"

    _serve(lambda _: next(replies), scenario)


def test_an_answer_that_is_not_a_json_object_reads_as_empty() -> None:
    async def scenario(kube: KubeClient) -> None:
        assert await kube.get("/readyz") == {}

    seen = _serve(lambda _: web.Response(text="ok"), scenario)
    assert seen[0].path == "/k8s/clusters/c-1/readyz"
