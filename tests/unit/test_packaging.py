"""The repository root is the `modelplex` package; its `operator` folder must not shadow the stdlib."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import click
import pytest

import modelplex

ROOT = Path(modelplex.__file__).parent
CHECK = (
    "import operator, modelplex.cli; "
    "assert operator.__file__.endswith('operator.py'), operator.__file__; operator.itemgetter"
)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize("where", ["repository root", "elsewhere"])
def test_stdlib_operator_wins_in_the_editable_install(where: str, tmp_path: Path) -> None:
    cwd = ROOT if where == "repository root" else tmp_path
    result = _run([sys.executable, "-c", CHECK], cwd)
    assert result.returncode == 0, result.stderr


def test_python_dash_m_works_from_the_repository_root() -> None:
    # `python -m` puts the working directory first on sys.path before anything imports `operator`;
    # a regular package named `operator` at the root would break every `python -m` (pip, pytest).
    result = _run([sys.executable, "-S", "-c", "import operator; operator.itemgetter"], ROOT)
    assert result.returncode == 0, result.stderr
    result = _run([sys.executable, "-m", "pip", "--version"], ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_normal_install_has_one_import_root(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("modelplex-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"modelplex", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}

    target = tmp_path / "site"
    installed = _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        tmp_path,
    )
    assert installed.returncode == 0, installed.stderr
    check = (
        f"import sys; sys.path.insert(0, {str(target)!r}); {CHECK}; "
        f"assert modelplex.cli.__file__.startswith({str(target)!r}), modelplex.cli.__file__"
    )
    result = _run([sys.executable, "-c", check], tmp_path)
    assert result.returncode == 0, result.stderr


def test_cli_lists_subcommands_each_with_help() -> None:
    from click.testing import CliRunner

    from modelplex.cli import SUBCOMMANDS, main

    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    assert "dev-cluster" in top.output
    for name in SUBCOMMANDS:
        command = main.get_command(click.Context(main), name)
        assert command is not None, name
        assert command.name == name
        assert command.help
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert command.help.split("\n")[0] in result.output
        assert SUBCOMMANDS[name].summary == command.get_short_help_str(limit=300), name
        assert SUBCOMMANDS[name].summary in " ".join(top.output.split())
    unknown = runner.invoke(main, ["no-such-command"])
    assert unknown.exit_code == 2
    assert "No such command 'no-such-command'" in unknown.output


@pytest.mark.parametrize("where", ["root", "elsewhere"])
def test_python_dash_m_modelplex_is_the_modelplex_command(where: str, tmp_path: Path) -> None:
    result = _run(
        [sys.executable, "-m", "modelplex", "scale", "--help"], ROOT if where == "root" else tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: modelplex scale")


def test_the_top_level_help_imports_no_room() -> None:
    probe = (
        "import sys; from modelplex.cli import main; "
        "main(['--help'], standalone_mode=False); "
        "rooms = ('operator', 'gateway', 'billing', 'local', 'engine', 'devcluster', 'kube'); "
        "loaded = sorted(m for m in sys.modules if m.split('.')[:2] in [['modelplex', r] for r in rooms]); "
        "assert not loaded, loaded"
    )
    result = _run([sys.executable, "-c", probe], ROOT)
    assert result.returncode == 0, result.stderr


def test_a_subcommand_imports_only_its_own_component() -> None:
    # The operator's memory target depends on it: the ledger and gateway stacks are about 60 MiB.
    probe = (
        "import sys; from modelplex.cli import main; "
        "main(['operator', 'run', '--help'], standalone_mode=False); "
        "loaded = sorted(m for m in ('sqlalchemy', 'fastapi', 'uvicorn', 'alembic') if m in sys.modules); "
        "assert not loaded, loaded"
    )
    result = _run([sys.executable, "-c", probe], ROOT)
    assert result.returncode == 0, result.stderr
