"""The `.pth` files of a virtualenv and the distributions that ship them.

Python runs every `import` line of every `.pth` file in site-packages at start-up, before any code
of ours: a dependency (or something posing as one) that drops a `.pth` file runs code in every
process of that interpreter. The supply-chain tests list them all and allow only the known ones.
"""

from __future__ import annotations

import csv
from pathlib import Path

UNOWNED = "(no distribution)"

# (file, distribution) pairs that are expected, each for a reason.
KNOWN: frozenset[tuple[str, str]] = frozenset(
    {
        # setuptools: makes `import distutils` find its own copy (SETUPTOOLS_USE_DISTUTILS).
        ("distutils-precedence.pth", "setuptools"),
        # `pip install -e .`: puts this checkout's modelplex on the path.
        ("__editable__.modelplex-0.1.0.pth", "modelplex"),
    }
)


def site_packages(venv: Path) -> list[Path]:
    return sorted(venv.glob("lib/python3*/site-packages"))


def pth_files(site: Path) -> dict[str, str]:
    """Every `.pth` file in SITE, mapped to the distribution whose RECORD lists it."""
    owners: dict[str, str] = {}
    for record in site.glob("*.dist-info/RECORD"):
        metadata = (record.parent / "METADATA").read_text(errors="replace")
        name = next(
            (line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Name:")),
            record.parent.name,
        )
        with record.open(newline="") as rows:
            for row in csv.reader(rows):
                if row and row[0].endswith(".pth") and "/" not in row[0]:
                    owners[row[0]] = name
    return {path.name: owners.get(path.name, UNOWNED) for path in sorted(site.glob("*.pth"))}


def unexpected_pth_files(venv: Path) -> list[str]:
    """'site/file (distribution)' for every `.pth` file of VENV that KNOWN does not allow."""
    found = []
    for site in site_packages(venv):
        for name, owner in pth_files(site).items():
            if (name, owner.lower()) not in KNOWN:
                found.append(f"{site / name} (from {owner})")
    return found
