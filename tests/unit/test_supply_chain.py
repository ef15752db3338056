"""The package's hashed lock is complete and current, and the virtualenv runs no unknown `.pth` file."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from mpxtest.pth_files import KNOWN, UNOWNED, pth_files, unexpected_pth_files

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "deploy" / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)( \\)?$")
HASH = re.compile(r"^    --hash=sha256:[0-9a-f]{64}( \\)?$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    lines = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    assert all(PIN.match(line) or HASH.match(line) for line in lines)
    pins = [i for i, line in enumerate(lines) if PIN.match(line)]
    assert all(HASH.match(lines[i + 1]) for i in pins), "a pin without --hash"
    return {_canonical(m[1]): m[2] for m in (PIN.match(lines[i]) for i in pins) if m}


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = (re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", spec.split(";")[0].strip()) for spec in declared)
    found = {_canonical(m[1]): m[2] for m in pins if m}
    assert len(found) == len(declared), "pyproject.toml pins every dependency exactly"
    return found


def test_the_lock_pins_every_declared_dependency_at_its_version() -> None:
    locked = _locked()
    stale = {
        name: (version, locked.get(name))
        for name, version in _declared().items()
        if locked.get(name) != version
    }
    assert not stale, f"{LOCK} is stale (pyproject, lock): {stale}; run deploy/lock.sh"
    assert "modelplex" not in locked


def test_this_virtualenv_holds_the_locked_versions() -> None:
    installed = {_canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differ = {
        name: (version, installed.get(name))
        for name, version in _locked().items()
        if installed.get(name) != version
    }
    assert not differ, f"(lock, installed): {differ}; run make install"


def test_this_virtualenv_has_only_the_known_pth_files() -> None:
    assert unexpected_pth_files(Path(sys.prefix)) == []


def test_an_unknown_pth_file_is_named_with_its_distribution(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    info = site / "evil-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    (info / "RECORD").write_text("evil.pth,sha256=x,10\nevil-1.0.dist-info/METADATA,,\n")
    (site / "evil.pth").write_text("import os; os.system('true')\n")
    (site / "dropped.pth").write_text("import sys\n")
    (site / "distutils-precedence.pth").write_text("import os\n")
    assert pth_files(site)["evil.pth"] == "evil"
    assert ("distutils-precedence.pth", "setuptools") in KNOWN
    assert unexpected_pth_files(tmp_path) == [
        f"{site / 'distutils-precedence.pth'} (from {UNOWNED})",  # known by name, but no setuptools
        f"{site / 'dropped.pth'} (from {UNOWNED})",
        f"{site / 'evil.pth'} (from evil)",
    ]
