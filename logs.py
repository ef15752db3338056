"""How our commands log: our own loggers at the level asked for, libraries' at WARNING unless asked.

Libraries log each request they make or serve at INFO: httpx one `HTTP Request: GET .../health
"200 OK"` line per health check (every second per local worker), uvicorn one per request and its
start-up, alembic its migration context, kopf its per-object chatter. That buries what a person has
to read (the `modelplex up` banner first), so they log WARNING and above unless `--log-level DEBUG`
asks for everything. What changes (a worker became healthy, a replica was ejected) is logged by our
own modules, once per change.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import click

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
LIBRARIES = (
    "alembic",
    "aiohttp.access",
    "aiosqlite",
    "asyncio",
    "httpcore",
    "httpx",
    "kopf",
    "kubernetes",
    "urllib3",
    "uvicorn",
)

log_level_option = click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(LEVELS),
    help="Of Modelplex's own logs; libraries (httpx, uvicorn, alembic, kopf, ...) log WARNING and "
    "above unless DEBUG.",
)


def library_level(level: str) -> int:
    """Libraries log WARNING and above, or everything at DEBUG, or less when fewer is asked for."""
    ours = logging.getLevelNamesMapping()[level]
    return ours if ours == logging.DEBUG else max(ours, logging.WARNING)


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Set up the root logger for a command (replacing any set-up before it) and quiet the libraries."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    logging.basicConfig(level=level, format=FORMAT, stream=stream or sys.stderr, force=True)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(library_level(level))
