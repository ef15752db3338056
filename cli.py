"""The `modelplex` command line: one root group, each room contributes its subcommands.

Subcommands are imported when they are used, so a process such as `modelplex operator run` carries
only its own dependencies: importing every component (the ledger's SQLAlchemy, the gateway's ASGI
stack) would double the operator's memory before it has watched a single object. `modelplex --help`
imports none of them either: the one-line help of each subcommand is kept here (a test checks it
against the command's own).
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import click

from modelplex import __version__


class Subcommand(NamedTuple):
    target: str  # "module:attribute" of the click command
    summary: str  # its one-line help, shown by `modelplex --help`


SUBCOMMANDS = {
    "up": Subcommand(
        "modelplex.local.cli:up", "Serve models on this machine: ledger, gateway and vLLM workers."
    ),
    "scale": Subcommand(
        "modelplex.local.cli:scale", "Change the replicas of a model (local stack, or a cluster)."
    ),
    "dev-cluster": Subcommand(
        "modelplex.devcluster.cli:dev_cluster",
        "A real Kubernetes control plane with fake GPU nodes, on 127.0.0.1.",
    ),
    "gateway": Subcommand("modelplex.gateway.cli:gateway", "The metered, OpenAI-compatible gateway."),
    "models": Subcommand(
        "modelplex.engine.models.cli:models",
        "Models served from local folders, prepared once from PyPI packages.",
    ),
    "operator": Subcommand(
        "modelplex.operator.cli:operator_group",
        "The Kubernetes operator that turns ModelDeployments into vLLM replicas.",
    ),
    "costs": Subcommand(
        "modelplex.billing.cli_capacity:costs_group",
        "Set and list GPU costs (per GPU and hour; history is kept).",
    ),
    "capacity": Subcommand(
        "modelplex.billing.cli_capacity:capacity_group",
        "Replica serving intervals and what GPU time cost and earned.",
    ),
    "tenants": Subcommand("modelplex.billing.cli:tenants_group", "Create, list and suspend tenants."),
    "keys": Subcommand("modelplex.billing.cli:keys_group", "Create, list and revoke API keys."),
    "plans": Subcommand(
        "modelplex.billing.cli_money:plans_group",
        "Set and list plans (rate limits, budgets, allowed models).",
    ),
    "prices": Subcommand(
        "modelplex.billing.cli_money:prices_group",
        "Set and list model prices (per 1M tokens; history is kept).",
    ),
    "usage": Subcommand(
        "modelplex.billing.cli_money:usage_command", "Usage per tenant and model, from the hourly rollups."
    ),
    "invoice": Subcommand(
        "modelplex.billing.cli_money:invoice_command", "A tenant's invoice for a calendar month (UTC)."
    ),
    "ledger": Subcommand("modelplex.billing.cli_money:ledger_group", "The ledger database itself."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are named in SUBCOMMANDS and imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = SUBCOMMANDS.get(cmd_name)
        if found is None:
            return None
        module, attribute = found.target.split(":")
        command: Any = getattr(importlib.import_module(module), attribute)
        return command if isinstance(command, click.Command) else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name].summary) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelplex")
def main() -> None:
    """Modelplex: serve models to many tenants, metered to the token."""
