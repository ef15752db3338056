"""Kubeconfig files for the dev cluster's users (admin, controller-manager, scheduler, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CLUSTER_NAME = "modelplex-dev"


@dataclass(frozen=True)
class Credentials:
    server: str
    ca: Path
    cert: Path
    key: Path


def kubeconfig(credentials: Credentials, user: str) -> dict[str, object]:
    context = f"{user}@{CLUSTER_NAME}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {
                    "server": credentials.server,
                    "certificate-authority": str(credentials.ca),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(credentials.cert),
                    "client-key": str(credentials.key),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": context,
    }


def write_kubeconfig(path: Path, credentials: Credentials, user: str) -> Path:
    path.write_text(yaml.safe_dump(kubeconfig(credentials, user), sort_keys=False))
    path.chmod(0o600)
    return path
