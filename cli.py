"""The `modelplex` command line: one root group, each component contributes its subcommands.

Subcommands are imported when they are used, so a process such as `modelplex operator run` carries
only its own dependencies: importing every component (the ledger's SQLAlchemy, the gateway's ASGI
stack) would double the operator's memory before it has watched a single object.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from modelplex import __version__

# Subcommand name -> "module:attribute" of its click command.
SUBCOMMANDS = {
    "up": "modelplex.local.cli:up",
    "scale": "modelplex.local.cli:scale",
    "dev-cluster": "modelplex.devcluster.cli:dev_cluster",
    "gateway": "modelplex.gateway.cli:gateway",
    "models": "modelplex.engine.models.cli:models",
    "operator": "modelplex.operator.cli:operator_group",
    "tenants": "modelplex.billing.cli:tenants_group",
    "keys": "modelplex.billing.cli:keys_group",
    "plans": "modelplex.billing.cli_money:plans_group",
    "prices": "modelplex.billing.cli_money:prices_group",
    "usage": "modelplex.billing.cli_money:usage_command",
    "invoice": "modelplex.billing.cli_money:invoice_command",
    "ledger": "modelplex.billing.cli_money:ledger_group",
}


class LazyGroup(click.Group):
    """A group whose subcommands are named in SUBCOMMANDS and imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: Any = getattr(importlib.import_module(module), attribute)
        return command if isinstance(command, click.Command) else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelplex")
def main() -> None:
    """Modelplex: serve models to many tenants, metered to the token."""
