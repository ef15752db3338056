"""Where the Kubernetes API server is and how to authenticate to it (the operator and the gateway).

Three ways, in this order: a kubeconfig named explicitly; the pod's service account when running in
a cluster; the default kubeconfig (KUBECONFIG, then ~/.kube/config). A kubeconfig is read by the
kubernetes client library, which knows every way one can name credentials (files, inline data,
tokens, token files, exec plugins).

Tokens change while a process runs: the kubelet rotates a pod's service-account token, exec plugins
(cloud providers' `get-token`) hand out tokens that expire within the hour. So the service-account
token is read from its file at every use, and a kubeconfig is loaded again (`renew`) whenever the
API server answers 401: that runs the exec plugin again or re-reads the token file it names. Requests
refused together renew once: a renewal names the token that was refused, and is skipped when the
current token is already another one.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kubernetes import client as kclient
from kubernetes import config as kconfig

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
DEFAULT_KUBECONFIG = "the default kubeconfig (KUBECONFIG, ~/.kube/config)"


class CredentialsError(ValueError):
    """No usable credentials: no kubeconfig where one was named or expected, or one that is broken."""


class TokenSource(Protocol):
    def token(self) -> str | None:
        """The bearer token to send now (None: authenticate by client certificate, or anonymously)."""

    def renew(self, refused: str | None) -> None:
        """The API server refused `refused`: get another token, unless that happened already.

        Blocking (it may run an exec plugin): async callers run it in a thread.
        """


class NoToken:
    def token(self) -> str | None:
        return None

    def renew(self, refused: str | None) -> None:
        pass


class TokenFile:
    """A token the kubelet rewrites in place: read at every use."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def token(self) -> str | None:
        return self.path.read_text().strip() or None

    def renew(self, refused: str | None) -> None:
        pass  # the next read gets whatever the kubelet wrote


class KubeconfigToken:
    """The token a kubeconfig yields, loaded again on renew."""

    def __init__(self, path: Path | None, first: kclient.Configuration) -> None:
        self._path = path
        self._configuration = first
        self._lock = threading.Lock()

    def token(self) -> str | None:
        return _bearer(self._configuration)

    def renew(self, refused: str | None) -> None:
        with self._lock:
            if self.token() != refused:
                return
            try:
                self._configuration = _load_kubeconfig(self._path)
            except (kconfig.ConfigException, OSError) as error:  # keep the old one; the next 401 tries again
                log.warning(
                    "Failed renewing Kubernetes credentials kubeconfig=%s error=%s",
                    self._path or DEFAULT_KUBECONFIG,
                    error,
                )


@dataclass(frozen=True)
class KubeCredentials:
    server: str
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    verify: bool = True
    tokens: TokenSource = field(default_factory=NoToken, compare=False)

    def url(self, path: str) -> str:
        """The URL of an API path. The server may carry a path of its own (clusters reached through a
        proxy such as Rancher's `https://host/k8s/clusters/<id>`), which must be kept."""
        return self.server.rstrip("/") + path

    def bearer(self) -> str | None:
        return self.tokens.token()

    def renew(self, refused: str | None) -> None:
        self.tokens.renew(refused)

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.verify:
            return False
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.cert_path and self.key_path:
            context.load_cert_chain(self.cert_path, self.key_path)
        return context


def authorization(token: str | None) -> dict[str, str]:
    """The Authorization header that sends `token` (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _bearer(configuration: kclient.Configuration) -> str | None:
    # The library keeps the header value under the auth setting's name ("BearerToken" since v32,
    # "authorization" before); its prefix is part of the value.
    api_key = configuration.api_key or {}
    value = api_key.get("BearerToken") or api_key.get("authorization") or ""
    return str(value).removeprefix("Bearer ").strip() or None


def _load_kubeconfig(path: Path | None) -> kclient.Configuration:
    configuration = kclient.Configuration()
    kconfig.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(path) if path is not None else None, client_configuration=configuration
    )
    return configuration


def in_cluster_credentials(
    directory: Path = SERVICE_ACCOUNT_DIR, server: str = IN_CLUSTER_SERVER
) -> KubeCredentials:
    return KubeCredentials(server, ca_path=str(directory / "ca.crt"), tokens=TokenFile(directory / "token"))


def kubeconfig_credentials(path: Path | None) -> KubeCredentials:
    """From `path`, or the library's default (KUBECONFIG, then ~/.kube/config) when None."""
    try:
        configuration = _load_kubeconfig(path)
    except (kconfig.ConfigException, OSError) as error:
        raise CredentialsError(
            f"cannot load Kubernetes credentials from {path or DEFAULT_KUBECONFIG}: {error}"
        ) from error
    return KubeCredentials(
        configuration.host,
        ca_path=configuration.ssl_ca_cert,
        cert_path=configuration.cert_file,
        key_path=configuration.key_file,
        verify=bool(configuration.verify_ssl),
        tokens=KubeconfigToken(path, configuration),
    )


def load_credentials(kubeconfig: Path | None) -> KubeCredentials:
    """An explicit kubeconfig wins; else the pod's service account when there is one; else the default."""
    if kubeconfig is None and (SERVICE_ACCOUNT_DIR / "token").is_file():
        return in_cluster_credentials()
    return kubeconfig_credentials(kubeconfig)
