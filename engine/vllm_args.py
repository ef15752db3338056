"""The vLLM command line of one engine process, built from a ModelDeployment spec.

Pure and free of Kubernetes objects: the local runtime runs the same flags on this machine. Callers
choose how to launch (`vllm serve`, `python -m vllm.entrypoints.openai.api_server`) and prepend it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from modelplex.crds.spec import ModelDeploymentSpec


@dataclass(frozen=True)
class MultiNode:
    """This process's place in a replica spread over several nodes (vLLM's own multi-node launcher)."""

    nodes: int
    node_rank: str  # a number, or a shell reference such as "$(NODE_RANK)" expanded by the runtime
    master_addr: str
    master_port: int


def model_argument(source: str, mount_root: str = "/models") -> str:
    """What `--model` gets for a model.source URI: a hub id, an s3 URI or a local path."""
    scheme, _, rest = source.partition("://")
    if scheme == "hf":
        return rest
    if scheme == "pvc":
        _claim, _, path = rest.partition("/")
        return f"{mount_root}/{path}".rstrip("/")
    if scheme == "file":
        return rest
    return source


def _engine_flags(spec: ModelDeploymentSpec) -> list[str]:
    engine = spec.engine
    args = ["--dtype", engine.dtype, "--gpu-memory-utilization", f"{engine.gpu_memory_utilization:g}"]
    if engine.max_model_len is not None:
        args += ["--max-model-len", str(engine.max_model_len)]
    if engine.quantization is not None:
        args += ["--quantization", engine.quantization]
    if engine.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", engine.kv_cache_dtype]
    if engine.max_num_seqs is not None:
        args += ["--max-num-seqs", str(engine.max_num_seqs)]
    args.append("--enable-prefix-caching" if engine.enable_prefix_caching else "--no-enable-prefix-caching")
    if engine.enable_chunked_prefill is not None:
        chunked = engine.enable_chunked_prefill
        args.append("--enable-chunked-prefill" if chunked else "--no-enable-chunked-prefill")
    return args


def _feature_flags(spec: ModelDeploymentSpec, mount_root: str) -> list[str]:
    engine, args = spec.engine, []
    if spec.model.revision:
        args += ["--revision", spec.model.revision]
    if spec.model.source.startswith("s3://"):
        args += ["--load-format", "runai_streamer"]
    if engine.speculative is not None:
        speculative = engine.speculative
        config: dict[str, object] = {
            "method": speculative.method,
            "num_speculative_tokens": speculative.num_speculative_tokens,
        }
        if speculative.model:
            config["model"] = speculative.model
        args += ["--speculative-config", _json(config)]
    if engine.lora_adapters:
        args.append("--enable-lora")
        modules = [f"{a.name}={model_argument(a.source, mount_root)}" for a in engine.lora_adapters]
        args += ["--lora-modules", *modules]
    return args


def _json(config: dict[str, object]) -> str:
    return json.dumps(config, separators=(",", ":"), sort_keys=True)


def vllm_args(
    spec: ModelDeploymentSpec,
    *,
    served_name: str,
    port: int,
    host: str = "0.0.0.0",
    model: str | None = None,
    mount_root: str = "/models",
    multi_node: MultiNode | None = None,
) -> list[str]:
    """Flags for one engine process; `model` overrides where the weights are (e.g. a local folder)."""
    args = [
        "--model",
        model if model is not None else model_argument(spec.model.source, mount_root),
        "--served-model-name",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        "--tensor-parallel-size",
        str(spec.parallelism.tensor),
        "--pipeline-parallel-size",
        str(spec.parallelism.pipeline),
    ]
    if multi_node is not None:
        args += ["--nnodes", str(multi_node.nodes), "--node-rank", multi_node.node_rank]
        args += ["--master-addr", multi_node.master_addr, "--master-port", str(multi_node.master_port)]
    args += _engine_flags(spec) + _feature_flags(spec, mount_root)
    return args + list(spec.engine.extra_args)


def headless(args: list[str]) -> list[str]:
    """The same flags for a worker process of a multi-node replica (no API server)."""
    return [*args, "--headless"]
