"""`modelplex up` and `modelplex scale`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from modelplex import logs
from modelplex.crds.labels import API_VERSION, KIND
from modelplex.engine.install import EngineMissing, EngineSettings
from modelplex.local.manifests import ManifestError
from modelplex.local.runtime import write_override
from modelplex.local.settings import DEFAULT_DEPLOYMENT, LocalSettings
from modelplex.local.stack import StackError, run
from modelplex.local.templates import PlanError
from modelplex.processes import pid_alive


@click.command("up")
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"ModelDeployment YAML to serve (repeatable) [default: {DEFAULT_DEPLOYMENT.name}].",
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Gateway port [8080].")
@logs.log_level_option
def up(files: tuple[Path, ...], port: int | None, log_level: str) -> None:
    """Serve models on this machine: ledger, gateway and vLLM workers.

    The ledger (SQLite in the state folder), the gateway with its admin API, and vLLM worker
    processes for each ModelDeployment file. Prints the gateway URL, a demo tenant's API key and
    ready-to-paste calls once every model answers. Edit a file or run `modelplex scale` to change
    replicas; Ctrl-C stops everything.
    """
    overrides: dict[str, Any] = {"port": port} if port is not None else {}
    settings = LocalSettings(**overrides)
    logs.configure(log_level)
    try:
        code = run(settings, list(files) or [DEFAULT_DEPLOYMENT], EngineSettings())
    except (ManifestError, PlanError, EngineMissing, StackError) as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        code = 0
    click.echo("Stopped.", err=True)
    sys.exit(code)


def _running_stack(settings: LocalSettings) -> dict[str, Any] | None:
    pid_text = settings.pid_file.read_text().strip() if settings.pid_file.exists() else ""
    if not (pid_text.isdigit() and pid_alive(int(pid_text))):
        return None
    status_file = settings.local_dir / "status.json"
    status: dict[str, Any] = json.loads(status_file.read_text()) if status_file.exists() else {}
    return status


@click.command("scale")
@click.argument("name")
@click.option("--replicas", type=click.IntRange(0, 10_000), required=True, help="Replicas to run.")
@click.option(
    "-n", "--namespace", default=None, help="Scale the ModelDeployment in this namespace of a cluster."
)
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Cluster to use (default: $KUBECONFIG or ~/.kube/config); implies a cluster.",
)
def scale(name: str, replicas: int, namespace: str | None, kubeconfig: Path | None) -> None:
    """Change the replicas of a model (local stack, or a cluster).

    Without --namespace or --kubeconfig it changes the running `modelplex up`; with either, it
    writes spec.replicas of ModelDeployment NAME through the scale subresource, like
    `kubectl scale md/NAME --replicas N`.
    """
    if namespace is not None or kubeconfig is not None:
        _scale_in_cluster(name, replicas, namespace or "default", kubeconfig)
    else:
        _scale_locally(name, replicas)


def _scale_in_cluster(name: str, replicas: int, namespace: str, kubeconfig: Path | None) -> None:
    # Imported here: the local path and `--help` need no cluster client.
    import asyncio

    import aiohttp

    from modelplex.kube.client import KubeClient
    from modelplex.kube.credentials import CredentialsError, load_credentials
    from modelplex.kube.errors import ApiError

    async def patch() -> None:
        async with KubeClient(load_credentials(kubeconfig)) as kube:
            await kube.patch_scale(API_VERSION, KIND, namespace, name, replicas)

    try:
        asyncio.run(patch())
    except ApiError as error:
        reason = error.message or error.reason
        raise click.ClickException(f"scaling md/{name} in namespace {namespace} failed: {reason}") from None
    except (CredentialsError, aiohttp.ClientError, OSError) as error:
        raise click.ClickException(f"scaling md/{name} in namespace {namespace} failed: {error}") from None
    click.echo(f"Scaled md/{name} in namespace {namespace} to {replicas} replica(s).")


def _scale_locally(name: str, replicas: int) -> None:
    settings = LocalSettings()
    status = _running_stack(settings)
    if status is None:
        raise click.ClickException(
            "no local stack is running (start one with `modelplex up`); "
            "for a cluster pass --namespace (or --kubeconfig)"
        )
    if name not in status:
        known = ", ".join(sorted(status)) or "none"
        raise click.ClickException(f"no ModelDeployment named {name!r} is served locally; served: {known}")
    write_override(settings.replicas_file, name, replicas)
    click.echo(f"Scaled {name} to {replicas} replica(s); the local stack applies it within a second.")
