"""Adds pip's `--hash` options to a requirements file of exact pins, read from the package index.

    python3 deploy/pin_hashes.py FILE     rewrites FILE in place

Every `name==version` line gets the sha256 of every file the index holds for that release that a
Linux CPython >= 3.11 could install (its sdist, and its wheels for any or a Linux platform and a
compatible interpreter), so `pip install --require-hashes -r FILE` accepts the release on any such
machine, whatever its architecture, and refuses anything else. Comment lines are kept as they are;
hashes already present are replaced. The index is PyPI's JSON simple API (PEP 691), or
$PIP_INDEX_URL when set. Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.request
from pathlib import Path

INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def release_of(filename: str) -> tuple[str, str] | None:
    """(canonical name, version) a wheel or sdist file name stands for; None for other files."""
    if filename.endswith(".whl"):
        name, version = filename.split("-")[:2]
        return canonical(name), version
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            name, _, version = filename.removesuffix(suffix).rpartition("-")
            return canonical(name), version
    return None


def installable_here(filename: str) -> bool:
    """False for wheels no Linux CPython >= 3.11 takes: other platforms, PyPy, older CPython ABIs."""
    if not filename.endswith(".whl"):
        return True
    python_tags, abi_tags, platform_tags = filename.removesuffix(".whl").split("-")[-3:]
    if not any(tag == "any" or "linux" in tag for tag in platform_tags.split(".")):
        return False
    return any(_takes(python, abi_tags) for python in python_tags.split("."))


def _takes(python: str, abi_tags: str) -> bool:
    if python.startswith("py"):
        return python in ("py3", "py2.py3") or python.startswith("py3")
    minor = re.fullmatch(r"cp3(\d+)", python)
    if minor is None:
        return False
    return int(minor.group(1)) >= 11 or "abi3" in abi_tags.split(".")


def release_hashes(name: str, version: str) -> list[str]:
    request = urllib.request.Request(
        f"{INDEX}/{canonical(name)}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    wanted = (canonical(name), version)
    hashes = sorted(
        entry["hashes"]["sha256"]
        for entry in files
        if release_of(entry["filename"]) == wanted
        and installable_here(entry["filename"])
        and "sha256" in entry["hashes"]
    )
    if not hashes:
        raise SystemExit(f"the index has no files for {name}=={version}")
    return hashes


def pins_only(text: str) -> str:
    """The file without its hash options: what install.sh and engine.install key the engine on."""
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith("--hash="):
            continue
        lines.append(line.removesuffix("\\").rstrip())
    return "".join(line + "\n" for line in lines)


def with_hashes(text: str) -> str:
    out = []
    for line in pins_only(text).splitlines():
        pin = PIN.match(line)
        if pin is None:
            out.append(line)
            continue
        hashes = release_hashes(pin.group(1), pin.group(2))
        out.append(line + " \\")
        out.extend(
            f"    --hash=sha256:{digest}" + (" \\" if i < len(hashes) - 1 else "")
            for i, digest in enumerate(hashes)
        )
        print(f"[lock] {line}: {len(hashes)} files", file=sys.stderr)
    return "".join(line + "\n" for line in out)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} REQUIREMENTS_FILE")
    path = Path(sys.argv[1])
    path.write_text(with_hashes(path.read_text()))


if __name__ == "__main__":
    main()
