"""The rooms of the package and what each may import, read from the source (nothing is imported).

A room is a top-level folder or module of the package. Every `import` and `from ... import` counts,
relative ones and those inside functions included; strings (cli.py's lazy SUBCOMMANDS) do not.
Everyone may import the root package itself (`from modelplex import __version__`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import modelplex

ROOT = Path(modelplex.__file__).parent
# Folders of the repository that are not rooms of the package (hidden ones, .venv, are not either).
NOT_ROOMS = {"tests", "bench", "deploy", "docs", "build", "charts"}
EVERYTHING = frozenset({"*"})

# room -> the rooms it may import (besides itself and the root package).
ALLOWED: dict[str, frozenset[str]] = {
    "crds": frozenset(),
    "kube": frozenset({"crds"}),
    "manifests": frozenset({"crds"}),
    "billing": frozenset({"crds", "prometheus_api"}),
    "processes": frozenset(),
    "logs": frozenset(),
    "prometheus_api": frozenset(),
    "engine": frozenset({"crds", "processes"}),
    "operator": frozenset({"crds", "kube", "engine", "logs", "prometheus_api"}),
    "gateway": frozenset({"crds", "kube", "billing.contracts", "logs"}),
    "devcluster": frozenset({"kube", "crds", "processes"}),
    "local": EVERYTHING,
    "cli": EVERYTHING,
    "__main__": frozenset({"cli"}),
    "__init__": frozenset(),
}
# The one module that binds the ledger to the gateway.
EXCEPTIONS: dict[str, frozenset[str]] = {"gateway.ledger_binding": frozenset({"billing"})}


@dataclass(frozen=True)
class Import:
    module: str  # dotted, without the leading "modelplex.", e.g. "gateway.cli"
    path: Path
    line: int
    target: str  # dotted, without the leading "modelplex."; "" for the root package


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def room_of(dotted: str) -> str:
    return dotted.split(".")[0]


def package_files() -> Iterator[Path]:
    yield from sorted(ROOT.glob("*.py"))
    # A folder is a room when it holds Python (operator/ has no __init__.py, see docs/architecture.md).
    for folder in sorted(p for p in ROOT.iterdir() if p.is_dir()):
        if folder.name not in NOT_ROOMS and not folder.name.startswith("."):
            yield from sorted(folder.rglob("*.py"))


def is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split(".")) if dotted else ROOT
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def resolve_from(node: ast.ImportFrom, module: str, path: Path) -> str | None:
    """The dotted target of `from X import ...` without "modelplex.", or None when X is not ours."""
    if node.level == 0:
        name = node.module or ""
        if name == "modelplex":
            return ""
        return name.removeprefix("modelplex.") if name.startswith("modelplex.") else None
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "__init__":
        package = []
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(path: Path) -> Iterator[Import]:
    module = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "modelplex" or alias.name.startswith("modelplex."):
                    yield Import(module, path, node.lineno, alias.name.removeprefix("modelplex")[1:])
        elif isinstance(node, ast.ImportFrom):
            source = resolve_from(node, module, path)
            if source is None:
                continue
            for alias in node.names:
                # `from modelplex.billing import ledger` imports the module billing.ledger.
                child = f"{source}.{alias.name}" if source else alias.name
                yield Import(module, path, node.lineno, child if is_module(child) else source)


def covers(allowed: str, target: str) -> bool:
    return allowed == "*" or target == allowed or target.startswith(allowed + ".")


def violation(found: Import) -> str | None:
    room, target_room = room_of(found.module), room_of(found.target)
    if found.target == "" or target_room == room:
        return None
    if room not in ALLOWED:
        return f"{found.path.relative_to(ROOT)} is in room {room!r}, which has no rule: add it to ALLOWED"
    allowed = ALLOWED[room] | EXCEPTIONS.get(found.module, frozenset())
    if any(covers(rule, found.target) for rule in allowed):
        return None
    rule = ", ".join(sorted(ALLOWED[room])) or "nothing of ours"
    exceptions = "".join(
        f" ({module} may import {', '.join(sorted(rooms))})"
        for module, rooms in EXCEPTIONS.items()
        if room_of(module) == room
    )
    return (
        f"{found.path.relative_to(ROOT)}:{found.line} ({found.module}) imports modelplex.{found.target}; "
        f"rule: {room} may import {rule}{exceptions}"
    )


def test_every_room_imports_only_what_its_rule_allows() -> None:
    found = [v for path in package_files() for i in imports_of(path) if (v := violation(i)) is not None]
    assert not found, "imports across rooms that the rules forbid:\n  " + "\n  ".join(found)


def test_the_reader_sees_every_room_and_every_kind_of_import() -> None:
    rooms = {room_of(module_name(path)) for path in package_files()}
    assert rooms == set(ALLOWED)
    targets = {i.target for path in package_files() for i in imports_of(path)}
    assert {"", "cli", "billing.contracts", "crds.resource"} <= targets


def test_relative_and_root_package_imports_are_resolved() -> None:
    operator_module = ROOT / "operator" / "controller.py"
    source = "from . import plan\nfrom ..gateway import app\nfrom modelplex import billing\n"
    tree = ast.parse(source)
    module = module_name(operator_module)
    resolved = [resolve_from(n, module, operator_module) for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert resolved == ["operator", "gateway", ""]
    found = Import(module, operator_module, 2, "gateway.app")
    assert violation(found) == (
        "operator/controller.py:2 (operator.controller) imports modelplex.gateway.app; "
        "rule: operator may import crds, engine, kube, logs, prometheus_api"
    )
