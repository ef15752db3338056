"""The Kubernetes transport for the dev cluster's bootstrap, which is blocking code (pytest fixtures,
`modelplex dev-cluster up`): the async client runs on an event loop this object owns.

One loop for the client's whole life, rather than `asyncio.run` per call, because an aiohttp session
belongs to the loop it was opened on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from modelplex.kube.client import Body, KubeClient
from modelplex.kube.credentials import KubeCredentials, load_credentials
from modelplex.kube.errors import ApiError

FIELD_MANAGER = "modelplex-dev-cluster"
T = TypeVar("T")


class BlockingClient:
    """Server-side apply and reads as the identity of a kubeconfig, one blocking call at a time."""

    def __init__(self, kubeconfig: Path, timeout_seconds: float = 10.0) -> None:
        self._loop = asyncio.new_event_loop()
        credentials = load_credentials(kubeconfig)
        self._client = self._run(_open(credentials, timeout_seconds))

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(work)

    def close(self) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._loop.close()

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, path: str) -> Body:
        return self._run(self._client.get(path))

    def ok(self, path: str) -> bool:
        """Whether `path` answers 200 (false while the server is not up yet, or refuses)."""
        try:
            self._run(self._client.get(path))
        except (ApiError, aiohttp.ClientError, OSError):
            return False
        return True

    def apply(self, manifest: Body) -> Body:
        """Server-side apply; a Node's status too (kubelets own it, here the bootstrap plays one)."""
        applied = self._run(self._client.apply(manifest, FIELD_MANAGER))
        if "status" in manifest and manifest["kind"] == "Node":
            applied = self._run(self._client.apply(manifest, FIELD_MANAGER, subresource="status"))
        return applied


async def _open(credentials: KubeCredentials, timeout_seconds: float) -> KubeClient:
    # aiohttp wants its session created while the loop runs.
    return KubeClient(credentials, timeout_seconds)
