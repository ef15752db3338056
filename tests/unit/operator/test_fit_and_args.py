"""Will-it-fit arithmetic and the vLLM command line."""

from __future__ import annotations

from typing import Any

import pytest

from modelplex.crds.spec import ModelDeploymentSpec
from modelplex.engine.vllm_args import MultiNode, headless, model_argument, vllm_args
from modelplex.operator.fit import check_fit, quantity_bytes


def _spec(**overrides: Any) -> ModelDeploymentSpec:
    base: dict[str, Any] = {
        "model": {
            "source": "hf://meta-llama/Llama-3.1-70B",
            "parameterCount": 70_000_000_000,
            "layers": 80,
            "kvHeads": 8,
            "headDim": 128,
        },
        "engine": {"maxModelLen": 32768},
        "parallelism": {"tensor": 4},
        "resources": {"gpuMemory": "80Gi"},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value}
    return ModelDeploymentSpec.model_validate(base)


def test_quantities() -> None:
    assert quantity_bytes("80Gi") == 80 * 2**30
    assert quantity_bytes("81559Mi") == 81559 * 2**20
    assert quantity_bytes("1.5G") == 1_500_000_000
    with pytest.raises(ValueError, match="not a memory quantity"):
        quantity_bytes("lots")


def test_fits_with_weights_and_kv_cache_counted() -> None:
    verdict = check_fit(_spec())
    assert verdict.fits is True
    kv = 2 * 80 * 8 * 128 * 2 * 32768
    assert verdict.needed_bytes == 140_000_000_000 + kv
    assert verdict.usable_bytes == int(80 * 2**30 * 0.9 * 4)
    assert "KV cache 10.0 GiB for one 32768-token sequence" in verdict.message


def test_does_not_fit_on_too_few_gpus_and_says_by_how_much() -> None:
    verdict = check_fit(_spec(parallelism={"tensor": 1}))
    assert verdict.fits is False
    assert verdict.message.startswith("needs 140.4 GiB")
    assert "1 GPU x 80.0 GiB x 0.9 = 72.0 GiB usable (GPU memory declared in resources.gpuMemory)" in (
        verdict.message
    )


def test_quantization_and_fp8_kv_shrink_the_need() -> None:
    plain = check_fit(_spec(parallelism={"tensor": 1}))
    awq = check_fit(_spec(parallelism={"tensor": 1}, engine={"quantization": "awq", "kvCacheDtype": "fp8"}))
    assert awq.fits is True
    assert awq.needed_bytes < plain.needed_bytes / 3


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"model": {"parameterCount": None}}, "model.parameterCount is not declared"),
        (
            {"resources": {"gpuMemory": None}},
            "resources.gpuMemory is not declared and no node has 4 allocatable nvidia.com/gpu",
        ),
        ({"engine": {"quantization": "gguf"}}, "bytes per parameter vary for quantization gguf"),
    ],
)
def test_unknown_facts_skip_the_check_and_say_so(overrides: dict[str, Any], why: str) -> None:
    verdict = check_fit(_spec(**overrides))
    assert verdict.fits is None
    assert verdict.message == f"GPU memory check skipped: {why}"


def test_missing_kv_facts_count_weights_only() -> None:
    verdict = check_fit(_spec(model={"layers": None}))
    assert verdict.fits is True
    assert "KV cache not counted" in verdict.message


def test_model_argument_per_scheme() -> None:
    assert model_argument("hf://org/name") == "org/name"
    assert model_argument("pvc://claim/llama/8b") == "/models/llama/8b"
    assert model_argument("file:///opt/model") == "/opt/model"
    assert model_argument("s3://bucket/prefix") == "s3://bucket/prefix"


def test_vllm_args_from_the_spec() -> None:
    spec = _spec(
        engine={
            "kvCacheDtype": "fp8",
            "maxNumSeqs": 64,
            "enablePrefixCaching": False,
            "speculative": {"method": "ngram", "numSpeculativeTokens": 4},
            "loraAdapters": [{"name": "sql", "source": "hf://org/sql-lora"}],
            "extraArgs": ["--seed=1"],
        },
        model={"revision": "main"},
    )
    args = vllm_args(spec, served_name="llama", port=8000)
    assert args[:12] == [
        "--model",
        "meta-llama/Llama-3.1-70B",
        "--served-model-name",
        "llama",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--tensor-parallel-size",
        "4",
        "--pipeline-parallel-size",
        "1",
    ]
    joined = " ".join(args)
    for expected in (
        "--max-model-len 32768",
        "--kv-cache-dtype fp8",
        "--max-num-seqs 64",
        "--no-enable-prefix-caching",
        "--revision main",
        "--enable-lora",
        "--lora-modules sql=org/sql-lora",
        '--speculative-config {"method":"ngram","num_speculative_tokens":4}',
    ):
        assert expected in joined
    assert args[-1] == "--seed=1"


def test_local_runtime_overrides_the_model_path_and_multi_node_adds_rank() -> None:
    spec = _spec()
    local = vllm_args(spec, served_name="m", port=9000, host="127.0.0.1", model="/tmp/weights")
    assert local[1] == "/tmp/weights"
    assert "--nnodes" not in local
    multi = vllm_args(spec, served_name="m", port=8000, multi_node=MultiNode(2, "1", "leader", 29501))
    assert " ".join(multi).count("--nnodes 2 --node-rank 1 --master-addr leader --master-port 29501") == 1
    assert headless(multi)[-1] == "--headless"
