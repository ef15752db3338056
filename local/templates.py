"""How one ModelDeployment runs on this machine: the prepared model folder and the engine's flags.

Pure: the same `vllm_args` the operator puts into pods, with the weights taken from the local model
cache instead of the Hub (this machine reaches no model hub).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from modelplex.engine.models.registry import KNOWN
from modelplex.engine.vllm_args import vllm_args
from modelplex.local.manifests import Manifest

# Hub ids of the models `modelplex models prepare` knows, so one file serves on a cluster (which
# downloads from the Hub) and here (which uses the prepared folder).
HUB_MODELS = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": "smollm2",
    "sentence-transformers/all-MiniLM-L6-v2": "minilm",
}


class PlanError(ValueError):
    """A deployment this machine cannot run; the message says why and what to do."""


@dataclass(frozen=True)
class WorkerTemplate:
    """Everything needed to start a replica except the port."""

    deployment: str
    served_name: str
    model_dir: Path
    replicas: int
    access: frozenset[str]
    manifest: Manifest

    def argv(self, launcher: list[str], port: int, auto_dtype: str | None = None) -> list[str]:
        """The engine's command line; `auto_dtype`: what `dtype: auto` means on this machine
        (engine/cpu_features.py), None for the model's own."""
        spec = self.manifest.deployment.spec
        if spec.engine.dtype == "auto" and auto_dtype is not None:
            spec = spec.model_copy(update={"engine": spec.engine.model_copy(update={"dtype": auto_dtype})})
        flags = vllm_args(
            spec, served_name=self.served_name, port=port, host="127.0.0.1", model=str(self.model_dir)
        )
        return [*launcher, *flags]

    @property
    def context_tokens(self) -> int | None:
        """The engine's context length: the spec's maxModelLen, else what vLLM takes from the model."""
        declared = self.manifest.deployment.spec.engine.max_model_len
        return declared if declared is not None else _model_context(self.model_dir)


def _model_context(model_dir: Path) -> int | None:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings") if isinstance(config, dict) else None
    return value if isinstance(value, int) and value > 0 else None


def _model_dir(source: str, models_dir: Path) -> Path:
    scheme, _, rest = source.partition("://")
    if scheme == "file":
        path = Path(rest)
        if not path.is_dir():
            raise PlanError(f"model.source {source}: {path} is not a folder")
        return path
    if scheme == "hf" and rest in HUB_MODELS:
        known = KNOWN[HUB_MODELS[rest]]
        path = models_dir / known.folder
        if not (path / "config.json").exists():
            raise PlanError(
                f"model {rest} is not prepared yet; run `modelplex models prepare {known.name}` (once)"
            )
        return path
    local = ", ".join(f"hf://{hub}" for hub in HUB_MODELS)
    raise PlanError(
        f"model.source {source} cannot be served here: no model hub is reachable; use file:///path "
        f"to a Hugging Face folder, or one of the models `modelplex models prepare` knows ({local})"
    )


def worker_template(manifest: Manifest, models_dir: Path, replicas: int | None = None) -> WorkerTemplate:
    """The worker template of a deployment; `replicas` overrides the file's (`modelplex scale`)."""
    deployment = manifest.deployment
    spec = deployment.spec
    if spec.parallelism.tensor * spec.parallelism.pipeline != 1:
        raise PlanError(
            f"{manifest.path}: {manifest.name}: the local runtime runs one engine process per replica; "
            "set parallelism.tensor and parallelism.pipeline to 1"
        )
    return WorkerTemplate(
        deployment=manifest.name,
        served_name=deployment.served_name,
        model_dir=_model_dir(spec.model.source, models_dir),
        replicas=spec.replicas if replicas is None else replicas,
        access=frozenset(spec.access.tenants),
        manifest=manifest,
    )
