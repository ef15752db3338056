"""List + watch of one collection against a small aiohttp server: pages, bookmarks, resume, 410."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from modelplex.kube.client import KubeClient
from modelplex.kube.credentials import KubeCredentials
from modelplex.kube.errors import ApiError, Gone
from modelplex.kube.watch import WatchedCollection

PATH = "/apis/discovery.k8s.io/v1/endpointslices"


def _object(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "n", "name": name, "resourceVersion": version, "managedFields": [{}]}}


def _event(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": body}


class ScriptedServer:
    """Lists answer from `lists` (pages), watches from `watches`: a status code or events to stream."""

    def __init__(self, lists: list[dict[str, Any]], watches: list[int | list[dict[str, Any]]]) -> None:
        self.lists: Iterator[dict[str, Any]] = iter(lists)
        self.watches = iter(watches)
        self.requests: list[dict[str, str]] = []
        self.finished = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.query))
        if request.query.get("watch") != "true":
            return web.json_response(next(self.lists))
        script = next(self.watches, None)
        if script is None:
            self.finished.set()
            await asyncio.sleep(3600)
        if isinstance(script, int):
            status = {"kind": "Status", "code": script, "reason": "Expired", "message": "too old"}
            return web.json_response(status, status=script)
        response = web.StreamResponse()
        await response.prepare(request)
        for event in cast(list[dict[str, Any]], script):
            await response.write(json.dumps(event).encode() + b"\n")
        await response.write_eof()
        return response


def _watch(
    server: ScriptedServer,
    label_selector: str | None = None,
    backoff_max_seconds: float = 0.1,
    pauses: list[float] | None = None,
) -> WatchedCollection:
    async def pause(seconds: float) -> None:
        if pauses is None:
            await asyncio.sleep(seconds)
        else:  # recorded, not waited for
            pauses.append(seconds)

    async def run() -> WatchedCollection:
        app = web.Application()
        app.router.add_get(PATH, server.handle)
        test_server = TestServer(app, host="127.0.0.1")
        await test_server.start_server()
        async with KubeClient(KubeCredentials(f"http://127.0.0.1:{test_server.port}"), 5) as kube:
            collection = WatchedCollection(
                kube, PATH, lambda: None, label_selector, backoff_max_seconds=backoff_max_seconds, sleep=pause
            )
            task = asyncio.create_task(collection.run())
            try:
                await asyncio.wait_for(server.finished.wait(), 10)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await test_server.close()
        return collection

    return asyncio.run(run())


def _page(items: list[dict[str, Any]], version: str, more: str | None = None) -> dict[str, Any]:
    metadata = {"resourceVersion": version, **({"continue": more} if more else {})}
    return {"items": items, "metadata": metadata}


def test_lists_in_pages_then_resumes_each_watch_from_the_last_version_and_bookmark() -> None:
    server = ScriptedServer(
        [_page([_object("a", "3")], "", more="next"), _page([_object("b", "4")], "10")],
        [
            [
                _event("ADDED", _object("c", "11")),
                _event("BOOKMARK", {"metadata": {"resourceVersion": "12"}}),
            ],
            [_event("DELETED", _object("a", "13"))],
        ],
    )
    collection = _watch(server, label_selector="app=x")
    first, second, *watches = server.requests
    assert first == {"labelSelector": "app=x", "limit": "500"}
    assert second == {"labelSelector": "app=x", "limit": "500", "continue": "next"}
    assert [w["resourceVersion"] for w in watches] == ["10", "12", "13"]
    assert watches[0] == {
        "labelSelector": "app=x",
        "watch": "true",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "290",
        "resourceVersion": "10",
    }
    assert sorted(collection.objects) == ["n/b", "n/c"]
    assert "managedFields" not in collection.objects["n/c"]["metadata"]
    assert collection.synced


def test_watches_that_end_at_once_and_empty_are_resumed_after_growing_pauses() -> None:
    # A proxy in front of the API server that closes every watch must not be asked in a tight loop.
    event = [_event("ADDED", _object("c", "11"))]
    server = ScriptedServer([_page([], "10")], [[], [], [], [], event, []])
    pauses: list[float] = []
    collection = _watch(server, backoff_max_seconds=1.5, pauses=pauses)
    assert len(pauses) == 5  # one per empty watch, none after the one with an event
    low, high = 0.8, 1.2  # the jitter
    for seconds, expected in zip(pauses, (0.5, 1.0, 1.5, 1.5, 0.5), strict=True):
        assert expected * low <= seconds <= expected * high  # doubling to the cap; an event resets it
    assert sorted(collection.objects) == ["n/c"]


def test_gone_lists_again_and_other_failures_back_off_and_list_again() -> None:
    server = ScriptedServer(
        [_page([_object("a", "3")], "5"), _page([_object("b", "6")], "7"), _page([], "9")],
        [410, [_event("ERROR", {"kind": "Status", "code": 500, "message": "boom"})]],
    )
    collection = _watch(server)
    lists = [r for r in server.requests if "watch" not in r]
    watches = [r["resourceVersion"] for r in server.requests if "watch" in r]
    assert len(lists) == 3
    assert watches == ["5", "7", "9"]
    assert collection.objects == {}  # what was deleted while not watching is gone after the re-list


def test_watch_events_update_the_collection_and_gone_means_list_again() -> None:
    # Moved from tests/integration/gateway/test_kube_discovery.py with the watch itself.
    changes: list[int] = []
    collection = WatchedCollection(cast(KubeClient, None), "/x", lambda: changes.append(1))
    body = {"metadata": {"namespace": "n", "name": "a", "resourceVersion": "7", "managedFields": [{}]}}
    assert collection._apply({"type": "ADDED", "object": body}) == "7"
    assert collection.objects["n/a"]["metadata"] == {"namespace": "n", "name": "a", "resourceVersion": "7"}
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}
    assert collection._apply(bookmark) == "9"
    assert collection._apply({"type": "DELETED", "object": body}) == "7"
    assert collection.objects == {}
    assert len(changes) == 2
    with pytest.raises(Gone):
        collection._apply({"type": "ERROR", "object": {"kind": "Status", "code": 410}})
    with pytest.raises(ApiError):
        collection._apply({"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "boom"}})
