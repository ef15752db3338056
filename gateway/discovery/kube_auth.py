"""Where the Kubernetes API server is and how the gateway authenticates to it.

A kubeconfig file is read through the kubernetes client library (it knows every way a kubeconfig can
name credentials: files, inline data, tokens, exec plugins); inside a pod the service-account token is
read from its file again at every (re)connection, because the kubelet rotates it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as kclient
from kubernetes import config as kconfig

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"


@dataclass(frozen=True)
class KubeCredentials:
    server: str
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    token: str | None = None
    token_path: Path | None = None  # re-read at every connection (rotated service-account tokens)
    verify: bool = True

    def bearer(self) -> str | None:
        if self.token_path is not None:
            return self.token_path.read_text().strip() or None
        return self.token

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.verify:
            return False
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.cert_path and self.key_path:
            context.load_cert_chain(self.cert_path, self.key_path)
        return context


def in_cluster_credentials(directory: Path = SERVICE_ACCOUNT_DIR) -> KubeCredentials:
    return KubeCredentials(
        IN_CLUSTER_SERVER, ca_path=str(directory / "ca.crt"), token_path=directory / "token"
    )


def kubeconfig_credentials(path: Path | None) -> KubeCredentials:
    """From `path`, or the library's default (KUBECONFIG, then ~/.kube/config) when None."""
    configuration = kclient.Configuration()
    kconfig.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(path) if path is not None else None, client_configuration=configuration
    )
    header = (configuration.api_key or {}).get("authorization") or ""
    return KubeCredentials(
        configuration.host,
        ca_path=configuration.ssl_ca_cert,
        cert_path=configuration.cert_file,
        key_path=configuration.key_file,
        token=header.removeprefix("Bearer ").strip() or None,
        verify=bool(configuration.verify_ssl),
    )


class CredentialsError(ValueError):
    """No usable credentials: no kubeconfig where one was named or expected, or one that is broken."""


def load_credentials(kubeconfig: Path | None) -> KubeCredentials:
    """An explicit kubeconfig wins; else the pod's service account when there is one; else the default."""
    if kubeconfig is None and (SERVICE_ACCOUNT_DIR / "token").is_file():
        return in_cluster_credentials()
    try:
        return kubeconfig_credentials(kubeconfig)
    except (kconfig.ConfigException, OSError) as error:
        where = kubeconfig or "the default kubeconfig (KUBECONFIG, ~/.kube/config)"
        raise CredentialsError(f"cannot load Kubernetes credentials from {where}: {error}") from error
