"""Will the model fit its GPUs? An estimate from the declared model facts, before any pod starts.

Needed bytes = weights (parameters x bytes per parameter for the dtype/quantization) + the KV cache
of one full-length sequence (2 x layers x kvHeads x headDim x maxModelLen x KV bytes). Usable bytes =
GPU memory x gpuMemoryUtilization x GPUs per replica. This is a lower bound on what vLLM needs
(activations, CUDA graphs and LoRA/draft weights come on top), so "does not fit" is certain while
"fits" is likely. Unknown facts skip the check (or its KV part) and the verdict says which.

GPU memory is resources.gpuMemory when declared, else read from the nodes a replica could be
scheduled on (gpus.py: GPU Feature Discovery's labels); the verdict says where the figure came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from modelplex.crds.spec import ModelDeploymentSpec
from modelplex.operator.gpus import GpuMemory, NodeGpus, gpu_memory

GIB = 1024**3
# Bytes per parameter of the stored weights; None: varies per checkpoint, so the check is skipped.
_QUANTIZED_BYTES: dict[str, float | None] = {
    "awq": 0.5,
    "awq_marlin": 0.5,
    "gptq": 0.5,
    "gptq_marlin": 0.5,
    "marlin": 0.5,
    "bitsandbytes": 0.5,
    "mxfp4": 0.53125,  # 4 bits + one 8-bit scale per 32 values
    "fp8": 1.0,
    "fbgemm_fp8": 1.0,
    "experts_int8": 1.0,
    "gguf": None,
    "compressed-tensors": None,
}
_DTYPE_BYTES = {"auto": 2.0, "bfloat16": 2.0, "float16": 2.0, "half": 2.0, "float32": 4.0}
_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")


@dataclass(frozen=True)
class FitVerdict:
    """fits: True/False, or None when the check could not run; message says why, with the numbers."""

    fits: bool | None
    message: str
    needed_bytes: int = 0
    usable_bytes: int = 0


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (e.g. 80Gi, 81559Mi, 85899345920) in bytes."""
    match = _QUANTITY.match(quantity)
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""])


def gib(count: float) -> str:
    return f"{count / GIB:.1f} GiB"


def weight_bytes_per_parameter(spec: ModelDeploymentSpec) -> float | None:
    quantization = spec.engine.quantization
    if quantization is not None:
        return _QUANTIZED_BYTES[quantization]
    return _DTYPE_BYTES[spec.engine.dtype]


def kv_bytes_per_token(spec: ModelDeploymentSpec) -> int | None:
    model = spec.model
    if model.layers is None or model.kv_heads is None or model.head_dim is None:
        return None
    element = 1 if spec.engine.kv_cache_dtype.startswith("fp8") else 2
    if spec.engine.kv_cache_dtype == "auto" and spec.engine.dtype == "float32":
        element = 4
    return 2 * model.layers * model.kv_heads * model.head_dim * element


def _unknown(spec: ModelDeploymentSpec) -> str | None:
    if spec.model.parameter_count is None:
        return "model.parameterCount is not declared"
    if weight_bytes_per_parameter(spec) is None:
        return f"bytes per parameter vary for quantization {spec.engine.quantization}"
    return None


def per_gpu_memory(spec: ModelDeploymentSpec, nodes: Iterable[NodeGpus]) -> GpuMemory | str:
    """Declared, else from the nodes (see gpus.gpu_memory); a str says what is missing."""
    if spec.resources.gpu_memory is not None:
        return GpuMemory(
            quantity_bytes(spec.resources.gpu_memory), "GPU memory declared in resources.gpuMemory"
        )
    return gpu_memory(spec, nodes)


def check_fit(spec: ModelDeploymentSpec, nodes: Iterable[NodeGpus] = ()) -> FitVerdict:
    """The verdict for one replica of `spec`; `nodes` is the operator's view of the GPU nodes."""
    missing = _unknown(spec)
    memory = per_gpu_memory(spec, nodes) if missing is None else missing
    if isinstance(memory, str):
        return FitVerdict(None, f"GPU memory check skipped: {memory}")
    assert spec.model.parameter_count is not None
    per_parameter = weight_bytes_per_parameter(spec) or 0.0
    weights = int(spec.model.parameter_count * per_parameter)
    per_token, length = kv_bytes_per_token(spec), spec.engine.max_model_len
    kv = per_token * length if per_token is not None and length is not None else 0
    gpus, utilization = spec.parallelism.gpus, spec.engine.gpu_memory_utilization
    per_gpu = memory.bytes
    usable = int(per_gpu * utilization * gpus)
    needed = weights + kv
    billions = spec.model.parameter_count / 1e9
    parts = f"weights {gib(weights)} for {billions:.2f}B parameters at {per_parameter:g} bytes"
    if kv:
        parts += f" + KV cache {gib(kv)} for one {length}-token sequence"
    else:
        parts += " (KV cache not counted: needs model.layers, kvHeads, headDim and engine.maxModelLen)"
    budget = f"{gpus} GPU x {gib(per_gpu)} x {utilization:g} = {gib(usable)} usable ({memory.source})"
    if needed > usable:
        return FitVerdict(False, f"needs {gib(needed)} ({parts}) but has {budget}", needed, usable)
    return FitVerdict(True, f"fits: needs {gib(needed)} ({parts}) of {budget}", needed, usable)
