"""`modelplex dev-cluster up|down|kubeconfig|status`."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from modelplex.devcluster.binaries import BinariesUnavailable, ensure_binaries
from modelplex.devcluster.cluster import DevCluster, dump_state, start_cluster
from modelplex.devcluster.config import DevClusterSettings, GpuNodePool
from modelplex.processes import StartupError


def _state_file(settings: DevClusterSettings) -> Path:
    return settings.state_dir / "state.json"


def _running_cluster(settings: DevClusterSettings) -> DevCluster | None:
    path = _state_file(settings)
    if not path.exists():
        return None
    cluster = DevCluster.from_state(json.loads(path.read_text()))
    if not any(c.running() for c in cluster.components):
        path.unlink()
        return None
    return cluster


@click.group("dev-cluster")
def dev_cluster() -> None:
    """A real Kubernetes control plane with fake GPU nodes, on 127.0.0.1.

    etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built from the Go module
    proxy and cached under ~/.cache/modelplex), kwok GPU nodes and the LeaderWorkerSet controller.
    """


@dev_cluster.command()
@click.option("--nodes", type=click.IntRange(1, 1000), default=None, help="Number of fake GPU nodes [2].")
@click.option("--gpus-per-node", type=click.IntRange(1, 64), default=None, help="GPUs on each node [8].")
@click.option("--foreground", is_flag=True, help="Stay attached; Ctrl-C stops the cluster.")
def up(nodes: int | None, gpus_per_node: int | None, foreground: bool) -> None:
    """Build (first time only) and start the cluster, then print how to reach it."""
    settings = _settings(nodes, gpus_per_node)
    if _running_cluster(settings) is not None:
        raise click.ClickException(
            f"a dev cluster is already running (state in {_state_file(settings)}); "
            "run `modelplex dev-cluster down` first"
        )
    try:
        binaries = ensure_binaries(settings.cache_dir)
        click.echo("Starting etcd, kube-apiserver, controller-manager, scheduler, kwok and LWS ...", err=True)
        workdir = settings.state_dir / "run"
        shutil.rmtree(workdir, ignore_errors=True)  # left by a cluster that was not stopped cleanly
        workdir.mkdir(parents=True)
        cluster = start_cluster(binaries, settings, workdir=workdir, tied_to_parent=foreground)
    except (BinariesUnavailable, StartupError) as error:
        raise click.ClickException(str(error)) from error
    dump_state(cluster, _state_file(settings))
    click.echo(f"Dev cluster ready in {cluster.started_in_seconds:.1f}s: {cluster.server}")
    click.echo(f"export KUBECONFIG={cluster.kubeconfig}")
    click.echo("kubectl get nodes")
    if foreground:
        _wait_for_interrupt()
        cluster.stop()
        _state_file(settings).unlink(missing_ok=True)
        click.echo("Dev cluster stopped.")


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("Press Ctrl-C to stop.", err=True)
    stop.wait()


@dev_cluster.command()
def down() -> None:
    """Stop the running cluster and delete its files."""
    settings = DevClusterSettings()
    cluster = _running_cluster(settings)
    if cluster is None:
        click.echo("No dev cluster is running.")
        return
    cluster.stop()
    _state_file(settings).unlink(missing_ok=True)
    click.echo("Dev cluster stopped.")


@dev_cluster.command()
def kubeconfig() -> None:
    """Print the path of the running cluster's admin kubeconfig."""
    cluster = _running_cluster(DevClusterSettings())
    if cluster is None:
        click.echo("No dev cluster is running; start one with `modelplex dev-cluster up`.", err=True)
        sys.exit(1)
    click.echo(str(cluster.kubeconfig))


@dev_cluster.command()
def status() -> None:
    """Show the cluster's processes and whether each is running."""
    cluster = _running_cluster(DevClusterSettings())
    if cluster is None:
        click.echo("No dev cluster is running.")
        return
    click.echo(f"server: {cluster.server}\nkubeconfig: {cluster.kubeconfig}")
    for component in cluster.components:
        state = "running" if component.running() else "exited"
        click.echo(f"{component.name:<26} pid={component.pid:<8} {state:<8} log={component.log}")


def _settings(nodes: int | None, gpus_per_node: int | None) -> DevClusterSettings:
    settings = DevClusterSettings()
    overrides: dict[str, Any] = {}
    if nodes is not None:
        overrides["count"] = nodes
    if gpus_per_node is not None:
        overrides["gpus_per_node"] = gpus_per_node
    if not overrides:
        return settings
    pool = GpuNodePool.model_validate({**settings.nodes.model_dump(), **overrides})
    return settings.model_copy(update={"nodes": pool})
