"""`modelplex gateway run`: serve the gateway with uvicorn (one worker process, uvloop, httptools)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import uvicorn

from modelplex.gateway.app import Gateway
from modelplex.gateway.discovery.base import Catalog, Publish
from modelplex.gateway.discovery.static import StaticConfig, StaticFileSource, load_static_config
from modelplex.gateway.settings import GatewaySettings
from modelplex.gateway.tenants import StaticKeyAuthority

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


class NoModels:
    """Discovery when no source is configured: an empty catalog."""

    async def run(self, publish: Publish) -> None:
        await publish(Catalog())


def build_app(settings: GatewaySettings) -> Gateway:
    config = load_static_config(settings.config) if settings.config else StaticConfig()
    discovery = StaticFileSource(settings.config) if settings.config else NoModels()
    # No ledger is wired into the command yet: usage stays in the journal until a sink ships it.
    return Gateway(settings, StaticKeyAuthority(config.tenants), None, discovery)


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
def run(host: str | None, port: int | None, config: Path | None) -> None:
    """Serve the gateway until SIGINT/SIGTERM, then drain in-flight requests."""
    overrides: dict[str, Any] = {
        k: v for k, v in {"host": host, "port": port, "config": config}.items() if v is not None
    }
    settings = GatewaySettings(**overrides)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    app = build_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=int(settings.drain_timeout_seconds),
        )
    )
    server.run()
