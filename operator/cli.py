"""The `modelplex` command line: one root group, each component contributes its subcommands."""

from __future__ import annotations

import click

from modelplex import __version__
from modelplex.billing import cli as billing_cli
from modelplex.billing import cli_money as billing_cli_money
from modelplex.gateway.cli import gateway
from modelplex.operator.commands import operator_group
from modelplex.operator.devcluster.cli import dev_cluster
from modelplex.operator.local.cli import scale, up
from modelplex.operator.models.cli import models


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelplex")
def main() -> None:
    """Modelplex: serve models to many tenants, metered to the token."""


main.add_command(up)
main.add_command(scale)
main.add_command(dev_cluster)
main.add_command(gateway)
main.add_command(models)
main.add_command(operator_group)
main.add_command(billing_cli.tenants_group)
main.add_command(billing_cli.keys_group)
main.add_command(billing_cli_money.plans_group)
main.add_command(billing_cli_money.prices_group)
main.add_command(billing_cli_money.usage_command)
main.add_command(billing_cli_money.invoice_command)
main.add_command(billing_cli_money.ledger_group)
