"""A static discovery source: a YAML or JSON file listing models -> endpoints (benchmarks, simple setups).

The file is re-read when its modification time changes, so endpoints can be edited without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import yaml

from modelplex.gateway.discovery.base import Catalog, Publish
from modelplex.gateway.static_tenants import StaticTenant

log = logging.getLogger(__name__)


class StaticConfig(Catalog):
    """The file: `models:` (the catalog) and optionally `tenants:` (keys for a ledger-less gateway)."""

    tenants: tuple[StaticTenant, ...] = ()


def load_static_config(path: Path) -> StaticConfig:
    data: Any = yaml.safe_load(path.read_text()) or {}
    return StaticConfig.model_validate(data)


class StaticFileSource:
    def __init__(self, path: Path, poll_seconds: float = 2.0) -> None:
        self._path = path
        self._poll = poll_seconds

    async def run(self, publish: Publish) -> None:
        """Publish the file's catalog, again whenever it changes. While the file cannot be read (say,
        deleted during an edit) the last catalog stays, logged once; it is read again once back."""
        seen: float | None = None
        missing = False
        while True:
            try:
                mtime = self._path.stat().st_mtime
            except OSError as error:
                if not missing:
                    log.error(
                        "Cannot read discovery file path=%s error=%s; keeping its last catalog",
                        self._path,
                        error,
                    )
                missing, seen = True, None
            else:
                missing = False
                if mtime != seen:
                    seen = mtime
                    await self._publish(publish)
            await asyncio.sleep(self._poll)

    async def _publish(self, publish: Publish) -> None:
        try:
            config = load_static_config(self._path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.error("Rejected discovery file path=%s error=%s", self._path, exc)
            return
        await publish(Catalog(models=config.models))
        log.info("Loaded discovery file path=%s models=%d", self._path, len(config.models))
