"""Real service-account tokens that tests can revoke, and a kubeconfig whose exec plugin hands them out.

A token is bound to a Secret (TokenRequest with a bound object): deleting the Secret makes the API
server refuse the token at once, which is how a test expires a credential without waiting for it.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import yaml
from kubernetes import client

from mpxtest.wait import eventually

_PLUGIN = """\
import json, pathlib, sys
here = pathlib.Path(sys.argv[1])
with (here / "calls").open("a") as calls:
    calls.write("called\\n")
status = {"token": (here / "token").read_text().strip()}
kind = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential"}
print(json.dumps({**kind, "status": status}))
"""


class ServiceAccountTokens:
    def __init__(self, kube: client.ApiClient, namespace: str, account: str) -> None:
        self.core = client.CoreV1Api(kube)
        self.namespace = namespace
        self.account = account
        self.server = kube.configuration.host
        self._bound: dict[str, str] = {}  # token -> the Secret it is bound to

    def issue(self) -> str:
        secret = f"{self.account}-bound-{uuid.uuid4().hex[:8]}"
        created = self.core.create_namespaced_secret(self.namespace, {"metadata": {"name": secret}})  # type: ignore[arg-type]
        assert created.metadata is not None
        request = {
            "spec": {
                "expirationSeconds": 3600,
                "boundObjectRef": {
                    "kind": "Secret",
                    "apiVersion": "v1",
                    "name": secret,
                    "uid": created.metadata.uid,
                },
            }
        }
        reply = self.core.create_namespaced_service_account_token(self.account, self.namespace, request)  # type: ignore[arg-type]
        assert reply.status is not None
        assert reply.status.token is not None
        token = reply.status.token
        self._bound[token] = secret
        return token

    def revoke(self, token: str) -> None:
        """Deletes the token's Secret and waits until the API server refuses the token."""
        self.core.delete_namespaced_secret(self._bound.pop(token), self.namespace)
        eventually(lambda: not self.accepted(token), what="the API server to refuse a revoked token")

    def accepted(self, token: str) -> bool:
        review = client.AuthenticationV1Api(self.core.api_client).create_token_review(
            {"spec": {"token": token}}  # type: ignore[arg-type]
        )
        return review.status is not None and bool(review.status.authenticated)

    def cleanup(self) -> None:
        for secret in self._bound.values():
            self.core.delete_namespaced_secret(secret, self.namespace)
        self._bound.clear()


class ExecPlugin:
    """A kubeconfig whose user is an exec plugin printing whatever token `hand_out()` last gave it."""

    def __init__(self, directory: Path, server: str, ca_path: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "plugin.py").write_text(_PLUGIN)
        self.kubeconfig = directory / "kubeconfig"
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(directory / "plugin.py"), str(directory)],
                "interactiveMode": "Never",
            }
        }
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "dev", "cluster": {"server": server, "certificate-authority": str(ca_path)}}
            ],
            "users": [{"name": "plugin", "user": user}],
            "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "plugin"}}],
            "current-context": "dev",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def hand_out(self, token: str) -> None:
        (self.directory / "token").write_text(token)

    @property
    def calls(self) -> int:
        calls = self.directory / "calls"
        return len(calls.read_text().splitlines()) if calls.exists() else 0


def cluster_ca(kubeconfig: Path) -> Path:
    """The CA certificate file of the (dev) cluster in `kubeconfig`."""
    return Path(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["certificate-authority"])
