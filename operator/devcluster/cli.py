"""`modelplex dev-cluster up|down|kubeconfig`."""

from __future__ import annotations

import click


@click.group("dev-cluster")
def dev_cluster() -> None:
    """A real Kubernetes control plane with fake GPU nodes, on 127.0.0.1."""
