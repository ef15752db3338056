"""A small async Kubernetes REST client (aiohttp): the transport the apply module writes through."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes import client as kclient
from kubernetes import config as kconfig

from modelplex.crds import labels
from modelplex.operator.settings import OperatorSettings

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


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to authenticate, as loaded by the kubernetes client library."""

    server: str
    ca_path: str | None
    cert_path: str | None
    key_path: str | None
    token: str | None
    verify: bool = True


def load_credentials(settings: OperatorSettings) -> Credentials:
    configuration = kclient.Configuration()
    if settings.kubeconfig is not None:
        kconfig.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(settings.kubeconfig), client_configuration=configuration
        )
    else:
        try:
            kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kconfig.ConfigException:
            kconfig.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    header = (configuration.api_key or {}).get("authorization") or ""
    token = header.removeprefix("Bearer ").strip() or None
    return Credentials(
        configuration.host,
        configuration.ssl_ca_cert,
        configuration.cert_file,
        configuration.key_file,
        token,
        bool(configuration.verify_ssl),
    )


def _ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    if not credentials.verify:
        return False
    context = ssl.create_default_context(cafile=credentials.ca_path)
    if credentials.cert_path and credentials.key_path:
        context.load_cert_chain(credentials.cert_path, credentials.key_path)
    return context


def resource_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    prefix, plural = RESOURCES[(api_version, kind)]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


class KubeApi:
    """Server-side apply, delete, status patch and create over one pooled HTTPS session."""

    def __init__(self, credentials: Credentials, timeout_seconds: float) -> None:
        self.credentials = credentials
        headers = {"Authorization": f"Bearer {credentials.token}"} if credentials.token else {}
        self._session = aiohttp.ClientSession(
            base_url=credentials.server,
            headers=headers,
            connector=aiohttp.TCPConnector(ssl=_ssl_context(credentials), limit=32),
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
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._session.request(method, path, data=data, params=params, headers=headers) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("message", "") if isinstance(payload, dict) else str(payload)
                raise ApiError(response.status, message)
            result: dict[str, Any] = payload if isinstance(payload, dict) else {}
            return result

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
