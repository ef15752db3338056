"""The `modelplex` command line: one root group, each component contributes its subcommands."""

from __future__ import annotations

import click

from modelplex import __version__
from modelplex.gateway.cli import gateway
from modelplex.operator.devcluster.cli import dev_cluster


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelplex")
def main() -> None:
    """Modelplex: serve models to many tenants, metered to the token."""


main.add_command(dev_cluster)
main.add_command(gateway)
