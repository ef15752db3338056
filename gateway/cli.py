"""`modelplex gateway run`: serve the gateway (one process, uvloop, the gateway's own HTTP server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from modelplex import logs
from modelplex.gateway.app import Gateway
from modelplex.gateway.discovery.base import Catalog, DiscoverySource, Publish
from modelplex.gateway.discovery.kube import KubernetesSource
from modelplex.gateway.discovery.static import StaticConfig, StaticFileSource, load_static_config
from modelplex.gateway.ledger_binding import LedgerBinding, configured_ledger
from modelplex.gateway.serving import ListenError, tenant_server
from modelplex.gateway.settings import GatewaySettings
from modelplex.gateway.static_tenants import StaticKeyAuthority
from modelplex.kube.credentials import CredentialsError, load_credentials


class NoModels:
    """Discovery when no source is configured: an empty catalog."""

    async def run(self, publish: Publish) -> None:
        await publish(Catalog())


def build_discovery(settings: GatewaySettings, config: StaticConfig) -> DiscoverySource:
    """The static file (when given), or Kubernetes; with Kubernetes the file may only hold `tenants:`."""
    if settings.discovery == "static":
        return StaticFileSource(settings.config) if settings.config else NoModels()
    if config.models:
        raise click.UsageError("With --discovery kubernetes, models come from ModelDeployments, not a file.")
    try:
        credentials = load_credentials(settings.kubeconfig)
    except CredentialsError as error:
        raise click.UsageError(str(error)) from error
    return KubernetesSource(credentials, settings.namespace, settings.discovery_debounce_seconds)


def build_app(settings: GatewaySettings, ledger: LedgerBinding | None = None) -> Gateway:
    """The gateway of `gateway run`: on the ledger when one is given, else ledger-less
    (keys from the static file's `tenants:`, usage kept in the journal)."""
    config = load_static_config(settings.config) if settings.config else StaticConfig()
    discovery = build_discovery(settings, config)
    if ledger is None:
        return Gateway(settings, StaticKeyAuthority(config.tenants), None, discovery)
    if config.tenants:
        raise click.UsageError(
            "The config file's 'tenants:' are for a gateway without the ledger; with "
            "MODELPLEX_DATABASE_URL set, tenants and keys live in the ledger (modelplex tenants|keys)."
        )
    return Gateway(settings, ledger, ledger, discovery, admin=ledger, services=(ledger,))


@click.group("gateway")
def gateway() -> None:
    """The metered, OpenAI-compatible gateway."""


@gateway.command("run")
@click.option(
    "--host", default=None, help="Address to listen on (default 127.0.0.1; MODELPLEX_GATEWAY_HOST)."
)
@click.option(
    "--port", type=int, default=None, help="Port to listen on (default 8080; MODELPLEX_GATEWAY_PORT)."
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Static discovery file (YAML/JSON): models, their endpoints, access and routing; optional tenants.",
)
@click.option(
    "--discovery",
    type=click.Choice(["static", "kubernetes"]),
    default=None,
    help="Where models come from: the --config file (default), or ModelDeployments and their ready "
    "endpoints (MODELPLEX_GATEWAY_DISCOVERY).",
)
@click.option(
    "--namespace",
    default=None,
    help="Kubernetes: watch only this namespace (default: all; MODELPLEX_GATEWAY_NAMESPACE).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Kubernetes: credentials file (default: the pod's service account, else ~/.kube/config).",
)
@click.option(
    "--admin-port",
    type=int,
    default=None,
    help="Serve /admin/ on this port only (a second listener; the tenant-facing port then answers 404 "
    "there) (MODELPLEX_GATEWAY_ADMIN_PORT).",
)
@click.option(
    "--admin-host",
    default=None,
    help="Address of the admin listener (default: --host; MODELPLEX_GATEWAY_ADMIN_HOST).",
)
@logs.log_level_option
def run(log_level: str, **options: Any) -> None:
    """Serve the gateway until SIGINT/SIGTERM, then drain in-flight requests.

    With MODELPLEX_DATABASE_URL set, keys, budgets and usage go through the ledger and its admin API
    is served under /admin/v1/ (on --admin-port when given, else on the tenant-facing port); otherwise
    keys come from the config file's `tenants:`. /metrics: MODELPLEX_GATEWAY_METRICS_LISTENER
    (tenant|admin), _METRICS_TOKEN, _METRICS_TENANT_LABELS.
    """
    overrides = {k: v for k, v in options.items() if v is not None}
    try:
        settings = GatewaySettings(**overrides)
    except ValidationError as error:
        raise click.UsageError(_settings_problems(error)) from None
    logs.configure(log_level)
    app = build_app(settings, configured_ledger())
    try:
        server = tenant_server(app, settings)
    except ListenError as error:
        raise click.ClickException(str(error)) from None
    server.run()


def _settings_problems(error: ValidationError) -> str:
    """Each bad setting on a line: its name (the option, or MODELPLEX_GATEWAY_<NAME>) and what is wrong."""
    lines = []
    for problem in error.errors():
        name = ".".join(str(part) for part in problem["loc"]) or "settings"
        lines.append(f"{name}: {problem['msg'].removeprefix('Value error, ')}")
    return "Invalid gateway settings:\n  " + "\n  ".join(lines)
