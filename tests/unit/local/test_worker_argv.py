"""A local worker's engine command line: `dtype: auto` as this machine's CPU means it, a declared
dtype as declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplex.local.manifests import load_all
from modelplex.local.templates import worker_template

MANIFEST = """
apiVersion: modelplex.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: chat}}
spec:
  model: {{source: "file://{model}"}}
  engine: {{dtype: {dtype}}}
"""


@pytest.mark.parametrize(
    ("declared", "auto_dtype", "runs_as"),
    [("auto", "float32", "float32"), ("auto", None, "auto"), ("bfloat16", "float32", "bfloat16")],
)
def test_auto_takes_the_machines_choice_and_a_declared_dtype_stays(
    tmp_path: Path, declared: str, auto_dtype: str | None, runs_as: str
) -> None:
    (tmp_path / "model").mkdir()
    file = tmp_path / "chat.yaml"
    file.write_text(MANIFEST.format(model=tmp_path / "model", dtype=declared))
    (manifest,) = load_all([file])
    argv = worker_template(manifest, tmp_path / "models").argv(["vllm"], 8000, auto_dtype)
    assert argv[argv.index("--dtype") + 1] == runs_as
