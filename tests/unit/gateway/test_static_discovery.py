"""The static discovery file: published when it changes, kept when it goes missing, read again when back."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from modelplex.gateway.discovery.base import Catalog
from modelplex.gateway.discovery.static import StaticFileSource

FILE = """
models:
  - name: {name}
    endpoints: [{{id: r0, url: "http://127.0.0.1:9"}}]
"""


def test_a_deleted_file_keeps_the_catalog_logs_once_and_is_read_again_when_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "discovery.yaml"
    path.write_text(FILE.format(name="first"))
    published: list[list[str]] = []

    async def publish(catalog: Catalog) -> None:
        published.append([model.name for model in catalog.models])

    async def scenario() -> None:
        task = asyncio.create_task(StaticFileSource(path, poll_seconds=0.01).run(publish))
        try:
            await asyncio.sleep(0.1)
            path.unlink()
            await asyncio.sleep(0.2)  # ~20 polls while the file is gone
            assert not task.done()  # the source goes on rather than failing (and being restarted)
            path.write_text(FILE.format(name="second"))
            await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    with caplog.at_level(logging.INFO, logger="modelplex.gateway.discovery.static"):
        asyncio.run(scenario())
    assert published == [["first"], ["second"]]
    missing = [record for record in caplog.records if "Cannot read discovery file" in record.getMessage()]
    assert len(missing) == 1
