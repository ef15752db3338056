"""A minimal Kubernetes REST client over httpx, enough to set up the cluster's own objects."""

from __future__ import annotations

import json
from typing import Any

import httpx

from modelplex.devcluster.kubeconfig import Credentials
from modelplex.devcluster.pki import KeyPair, client_tls

FIELD_MANAGER = "modelplex-dev-cluster"

# Path prefix and plural of each kind the dev cluster creates itself.
_KINDS: dict[tuple[str, str], tuple[str, str]] = {
    ("v1", "Node"): ("/api/v1", "nodes"),
    ("v1", "Namespace"): ("/api/v1", "namespaces"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): (
        "/apis/apiextensions.k8s.io/v1",
        "customresourcedefinitions",
    ),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): (
        "/apis/admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
    ),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
    ),
}


class ClusterClient:
    """Cluster-scoped server-side apply and reads, authenticated with a client certificate."""

    def __init__(self, credentials: Credentials, timeout: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=credentials.server,
            verify=client_tls(credentials.ca, KeyPair(credentials.cert, credentials.key)),
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str) -> dict[str, Any]:
        response = self._http.get(path)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def ok(self, path: str) -> bool:
        return self._http.get(path).status_code == 200

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a cluster-scoped object; the status, if any, is applied too."""
        prefix, plural = _KINDS[(manifest["apiVersion"], manifest["kind"])]
        name = manifest["metadata"]["name"]
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        headers = {"Content-Type": "application/apply-patch+yaml"}
        body = json.dumps(manifest)
        response = self._http.patch(f"{prefix}/{plural}/{name}", params=params, headers=headers, content=body)
        response.raise_for_status()
        if "status" in manifest and manifest["kind"] == "Node":
            response = self._http.patch(
                f"{prefix}/{plural}/{name}/status", params=params, headers=headers, content=body
            )
            response.raise_for_status()
        applied: dict[str, Any] = response.json()
        return applied
