"""`python -m modelplex`: the same command line as the `modelplex` script."""

from modelplex.cli import main

main(prog_name="modelplex")
