"""`modelplex operator run`: the ModelDeployment operator in the foreground."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from modelplex import logs
from modelplex.kube.credentials import CredentialsError, load_credentials
from modelplex.operator.runner import run_operator
from modelplex.operator.settings import OperatorSettings


@click.group(name="operator")
def operator_group() -> None:
    """The Kubernetes operator that turns ModelDeployments into vLLM replicas."""


@operator_group.command(name="run")
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Kubeconfig to use (default: in-cluster service account, then $KUBECONFIG).",
)
@click.option("--namespace", "namespaces", multiple=True, help="Watch only this namespace (repeatable).")
@click.option("--workers", type=int, default=None, help="Reconciles running at once.")
@logs.log_level_option
def run_command(
    kubeconfig: Path | None, namespaces: tuple[str, ...], workers: int | None, log_level: str
) -> None:
    """Run the operator until interrupted (settings: MODELPLEX_OPERATOR_*)."""
    logs.configure(log_level)
    overrides: dict[str, Any] = {}
    if kubeconfig is not None:
        overrides["kubeconfig"] = kubeconfig
    if namespaces:
        overrides["namespaces"] = namespaces
    if workers is not None:
        overrides["workers"] = workers
    settings = OperatorSettings(**overrides)
    try:
        credentials = load_credentials(settings.kubeconfig)
    except CredentialsError as error:
        raise click.ClickException(str(error)) from error
    asyncio.run(run_operator(settings, credentials))
