"""A small async Kubernetes REST client (aiohttp): the transport the apply module writes through."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from modelplex.crds import labels
from modelplex.kube.credentials import KubeCredentials, authorization

# Path prefix and plural of every kind the operator writes.
RESOURCES: dict[tuple[str, str], tuple[str, str]] = {
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments"),
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): (
        "/apis/leaderworkerset.x-k8s.io/v1",
        "leaderworkersets",
    ),
    ("v1", "Service"): ("/api/v1", "services"),
    ("policy/v1", "PodDisruptionBudget"): ("/apis/policy/v1", "poddisruptionbudgets"),
    ("v1", "PersistentVolumeClaim"): ("/api/v1", "persistentvolumeclaims"),
    ("v1", "Event"): ("/api/v1", "events"),
    (labels.API_VERSION, labels.KIND): (f"/apis/{labels.API_VERSION}", labels.PLURAL),
}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def resource_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    prefix, plural = RESOURCES[(api_version, kind)]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


class KubeApi:
    """Server-side apply, delete, status patch and create over one pooled HTTPS session."""

    def __init__(self, credentials: KubeCredentials, timeout_seconds: float) -> None:
        self.credentials = credentials
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=credentials.ssl_context(), limit=32),
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        )

    async def close(self) -> None:
        await self._session.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        data = json.dumps(body) if body is not None else None
        content = {"Content-Type": content_type} if data is not None else {}
        token = self.credentials.bearer()
        status, payload = await self._send(method, path, data, params, {**content, **authorization(token)})
        if status == 401:  # an expired or rotated token: renew it, then try once more
            await asyncio.to_thread(self.credentials.renew, token)
            headers = {**content, **authorization(self.credentials.bearer())}
            status, payload = await self._send(method, path, data, params, headers)
        if status >= 400:
            message = payload.get("message", "") if isinstance(payload, dict) else str(payload)
            raise ApiError(status, message)
        result: dict[str, Any] = payload if isinstance(payload, dict) else {}
        return result

    async def _send(
        self,
        method: str,
        path: str,
        data: str | None,
        params: dict[str, str] | None,
        headers: dict[str, str],
    ) -> tuple[int, Any]:
        async with self._session.request(
            method, self.credentials.url(path), data=data, params=params, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def apply(self, manifest: dict[str, Any], field_manager: str) -> dict[str, Any]:
        metadata = manifest["metadata"]
        path = resource_path(
            manifest["apiVersion"], manifest["kind"], metadata["namespace"], metadata["name"]
        )
        params = {"fieldManager": field_manager, "force": "true"}
        return await self._request(
            "PATCH", path, body=manifest, params=params, content_type="application/apply-patch+yaml"
        )

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        path = resource_path(api_version, kind, namespace, name)
        try:
            await self._request("DELETE", path, body={"propagationPolicy": "Background"})
        except ApiError as error:
            if error.status != 404:
                raise

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        path = resource_path(labels.API_VERSION, labels.KIND, namespace, name) + "/status"
        return await self._request(
            "PATCH", path, body={"status": status}, content_type="application/merge-patch+json"
        )

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        path = resource_path(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["namespace"])
        return await self._request("POST", path, body=manifest)
