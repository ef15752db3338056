"""The installed engine's virtualenv (what `make engine` built) runs no unknown `.pth` file."""

from __future__ import annotations

from modelplex.engine import install as engines
from mpxtest.pth_files import site_packages, unexpected_pth_files


def test_the_engine_virtualenv_has_only_the_known_pth_files() -> None:
    engine = engines.require(engines.EngineSettings())
    assert site_packages(engine.directory), f"no site-packages under {engine.directory}"
    assert unexpected_pth_files(engine.directory) == []
