"""The desired state of a ModelDeployment: what to serve, how, on which GPUs, for whom, at what price.

Field-level limits (minimum, pattern, enum) live in the field definitions; cross-field rules are
CEL rules (`x-kubernetes-validations`) enforced at admission and mirrored by model validators so
the same spec loaded from a file in Python fails the same way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, PlainSerializer, WithJsonSchema, field_validator, model_validator

from modelplex.crds.base import SOURCE_MESSAGE, SOURCE_PATTERN, ApiModel, cel, check_source, validations

DEFAULT_IMAGE = "vllm/vllm-openai:v0.31.0"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi)?$"
MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,10})?$"
# Flags the operator derives from typed fields; setting them again in extraArgs would contradict them.
MANAGED_FLAGS = (
    "model",
    "served-model-name",
    "host",
    "port",
    "tensor-parallel-size",
    "pipeline-parallel-size",
    "nnodes",
    "node-rank",
    "master-addr",
    "headless",
)
MANAGED_FLAG_PATTERN = "^--(" + "|".join(MANAGED_FLAGS) + ")(=.*)?$"

SOURCE_RULE = validations(cel(f"self.matches(r'{SOURCE_PATTERN}')", SOURCE_MESSAGE))

Money = Annotated[
    Decimal,
    Field(ge=0),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN, "maxLength": 24}),
]
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
ShortText = Annotated[str, Field(max_length=256)]

Dtype = Literal["auto", "bfloat16", "float16", "half", "float32"]
Quantization = Literal[
    "awq",
    "awq_marlin",
    "gptq",
    "gptq_marlin",
    "marlin",
    "bitsandbytes",
    "fp8",
    "fbgemm_fp8",
    "experts_int8",
    "mxfp4",
    "gguf",
    "compressed-tensors",
]
KvCacheDtype = Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
SpeculativeMethod = Literal["ngram", "eagle", "eagle3", "medusa", "mlp_speculator", "draft_model"]


class ModelSource(ApiModel):
    """Where the weights come from and the facts the operator sizes GPUs with."""

    source: str = Field(max_length=512, json_schema_extra=SOURCE_RULE)
    """hf://org/name, s3://bucket/prefix, pvc://claim/path or file:///path (inside the image)."""
    served_name: str | None = Field(default=None, min_length=1, max_length=256)
    """Model id tenants send in requests; defaults to metadata.name."""
    revision: str | None = Field(default=None, max_length=128)
    """Branch, tag or commit of a hf:// model."""
    credentials_secret: str | None = Field(default=None, max_length=253)
    """Secret whose keys become environment variables of the engine (e.g. HF_TOKEN, AWS_ACCESS_KEY_ID)."""
    parameter_count: int | None = Field(default=None, ge=1, json_schema_extra={"format": "int64"})
    """Number of parameters (e.g. 8030261248); needed for the GPU-memory check."""
    layers: int | None = Field(default=None, ge=1, le=10_000)
    """Transformer layers; with kvHeads and headDim it sizes the KV cache."""
    kv_heads: int | None = Field(default=None, ge=1, le=10_000)
    """Key/value attention heads (grouped-query attention)."""
    head_dim: int | None = Field(default=None, ge=1, le=100_000)
    """Dimension of one attention head."""

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return check_source(value)


class Speculative(ApiModel):
    """Speculative decoding: a cheap proposer drafts tokens that the model verifies."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.method == 'ngram' || has(self.model)",
                "model is required unless method is ngram",
                ".model",
            )
        )
    )

    method: SpeculativeMethod
    """Proposer: ngram (prompt lookup, no extra model) or a draft/EAGLE/Medusa model."""
    model: str | None = Field(default=None, max_length=512)
    """The proposer model (hf id or path); required for every method but ngram."""
    num_speculative_tokens: int = Field(default=3, ge=1, le=64)
    """Tokens drafted per step."""

    @model_validator(mode="after")
    def _model_needed(self) -> Speculative:
        if self.method != "ngram" and not self.model:
            raise ValueError("model is required unless method is ngram")
        return self


class LoraAdapter(ApiModel):
    """A LoRA adapter served next to the base model under its own name."""

    name: str = Field(min_length=1, max_length=128)
    """Model id tenants send to use this adapter."""
    source: str = Field(max_length=512, json_schema_extra=SOURCE_RULE)
    """Where the adapter comes from, in the same URI forms as model.source."""

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return check_source(value)


class EnvVar(ApiModel):
    """An environment variable of the engine container."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)
    """Variable name."""
    value: str = Field(default="", max_length=4096)
    """Variable value."""


class Engine(ApiModel):
    """The vLLM engine: image and typed knobs, plus escape hatches."""

    image: str = Field(default=DEFAULT_IMAGE, min_length=1, max_length=512)
    """Container image with vLLM's OpenAI-compatible server."""
    max_model_len: int | None = Field(default=None, ge=16, le=10_000_000)
    """Longest sequence (prompt + completion) in tokens; also sizes the KV cache in the fit check."""
    dtype: Dtype = "auto"
    """Weight and activation dtype; auto takes the model's (counted as 2 bytes in the fit check)."""
    quantization: Quantization | None = None
    """Weight quantization method."""
    kv_cache_dtype: KvCacheDtype = "auto"
    """KV cache dtype; fp8 halves the KV memory."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Fraction of each GPU's memory vLLM may use, in (0, 1]."""
    max_num_seqs: int | None = Field(default=None, ge=1, le=100_000)
    """Sequences batched together at most."""
    enable_prefix_caching: bool = True
    """Reuse KV cache across requests sharing a prefix."""
    enable_chunked_prefill: bool | None = None
    """Split long prefills into chunks batched with decodes; unset keeps vLLM's default."""
    speculative: Speculative | None = None
    """Speculative decoding; off when unset."""
    lora_adapters: list[LoraAdapter] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """LoRA adapters to serve with the base model."""
    extra_args: list[ShortText] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra=validations(
            cel(
                f"self.all(a, !a.matches('{MANAGED_FLAG_PATTERN}'))",
                "must not repeat flags the operator sets from typed fields (--"
                + ", --".join(MANAGED_FLAGS)
                + ")",
            )
        ),
    )
    """Further vLLM flags, passed verbatim after the typed ones."""
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Further environment variables of the engine container."""

    @field_validator("extra_args")
    @classmethod
    def _no_managed_flags(cls, value: list[str]) -> list[str]:
        for arg in value:
            flag = arg.split("=", 1)[0]
            if flag.startswith("--") and flag[2:] in MANAGED_FLAGS:
                raise ValueError(f"must not repeat flags the operator sets from typed fields ({flag})")
        return value


class Parallelism(ApiModel):
    """How one replica is split across GPUs: GPUs per replica = tensor x pipeline."""

    tensor: int = Field(default=1, ge=1, le=1024)
    """Tensor-parallel degree: GPUs each layer is split across."""
    pipeline: int = Field(default=1, ge=1, le=128)
    """Pipeline-parallel degree: stages the layers are split into."""

    @property
    def gpus(self) -> int:
        return self.tensor * self.pipeline


class Toleration(ApiModel):
    """A pod toleration (as in core/v1), e.g. for tainted GPU nodes."""

    key: str | None = Field(default=None, max_length=253)
    """Taint key; empty with operator Exists matches every taint."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Equal compares value; Exists ignores it."""
    value: str | None = Field(default=None, max_length=253)
    """Taint value for operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to tolerate; empty tolerates all effects."""
    toleration_seconds: int | None = None
    """For NoExecute: how long the pod stays bound after the taint appears."""


class Resources(ApiModel):
    """GPUs and the rest of what each engine pod needs."""

    gpu_resource_name: str = Field(default="nvidia.com/gpu", min_length=1, max_length=253)
    """Extended resource that counts GPUs on nodes."""
    gpus_per_node: int = Field(default=8, ge=1, le=64)
    """GPUs on each node; a replica needing more is spread over a LeaderWorkerSet group."""
    gpu_product: str | None = Field(default=None, max_length=253)
    """Required value of the node label nvidia.com/gpu.product (e.g. NVIDIA-H100-80GB-HBM3)."""
    gpu_memory: Quantity | None = None
    """Memory of one GPU (e.g. 80Gi); used by the will-it-fit check."""
    cpu: Quantity | None = None
    """CPU request and limit of each engine pod."""
    memory: Quantity | None = None
    """Memory request and limit of each engine pod."""
    node_selector: dict[str, ShortText] = Field(default_factory=dict, max_length=64)
    """Further node labels each engine pod requires."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Tolerations of each engine pod."""


class Targets(ApiModel):
    """What the autoscaler keeps each replica at."""

    queue_depth_per_replica: int = Field(default=8, ge=1, le=100_000)
    """Requests waiting per replica before scaling out."""
    kv_cache_utilization: float = Field(default=0.8, gt=0, le=1)
    """KV-cache use (0..1] per replica before scaling out."""


class Scaling(ApiModel):
    """Bounds and targets for the autoscaler, which writes spec.replicas."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must not exceed maxReplicas",
                ".minReplicas",
            ),
            cel(
                "!has(self.scaleToZeroIdleSeconds) || self.minReplicas == 0",
                "scaleToZeroIdleSeconds needs minReplicas: 0",
                ".scaleToZeroIdleSeconds",
            ),
        )
    )

    min_replicas: int = Field(default=1, ge=0, le=10_000)
    """Fewest replicas; 0 allows scaling to zero."""
    max_replicas: int = Field(ge=1, le=10_000)
    """Most replicas."""
    scale_to_zero_idle_seconds: int | None = Field(default=None, ge=1)
    """Idle time after which the autoscaler scales to zero (needs minReplicas: 0)."""
    targets: Targets = Field(default_factory=Targets, json_schema_extra={"default": {}})
    """Per-replica load the autoscaler aims for."""

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        if self.scale_to_zero_idle_seconds is not None and self.min_replicas != 0:
            raise ValueError("scaleToZeroIdleSeconds needs minReplicas: 0")
        return self


class Pricing(ApiModel):
    """List prices per million tokens, read by billing; decimal strings, never floats."""

    input_per_1m: Money = Field(alias="inputPer1M")
    """Price of 1M prompt tokens."""
    cached_input_per_1m: Money | None = Field(default=None, alias="cachedInputPer1M")
    """Price of 1M prompt tokens served from the prefix cache; defaults to inputPer1M."""
    output_per_1m: Money = Field(alias="outputPer1M")
    """Price of 1M completion tokens."""
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    """ISO 4217 currency code."""


class Access(ApiModel):
    """Which tenants may use the model."""

    tenants: list[ShortText] = Field(default_factory=list, max_length=1000)
    """Tenant ids or names; empty means every tenant."""


PARALLELISM_RULE = (
    "self.parallelism.tensor * self.parallelism.pipeline <= self.resources.gpusPerNode"
    " || (self.parallelism.tensor * self.parallelism.pipeline) % self.resources.gpusPerNode == 0"
)
PARALLELISM_MESSAGE = (
    "tensor x pipeline must fit one node (<= resources.gpusPerNode) or be a multiple of gpusPerNode"
)
REPLICAS_MESSAGE = "replicas must be within [scaling.minReplicas, scaling.maxReplicas]"


class ModelDeploymentSpec(ApiModel):
    """A model served by vLLM replicas on GPU nodes."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.scaling) || (self.replicas >= self.scaling.minReplicas"
                " && self.replicas <= self.scaling.maxReplicas)",
                REPLICAS_MESSAGE,
                ".replicas",
            ),
            cel(PARALLELISM_RULE, PARALLELISM_MESSAGE, ".parallelism"),
        )
    )

    model: ModelSource
    """The model to serve."""
    engine: Engine = Field(default_factory=Engine, json_schema_extra={"default": {}})
    """The vLLM engine and its settings."""
    parallelism: Parallelism = Field(default_factory=Parallelism, json_schema_extra={"default": {}})
    """Tensor and pipeline parallelism of one replica."""
    resources: Resources = Field(default_factory=Resources, json_schema_extra={"default": {}})
    """GPUs and other resources of each engine pod."""
    replicas: int = Field(default=1, ge=0, le=10_000)
    """Number of replicas (the scale subresource; the autoscaler writes it)."""
    scaling: Scaling | None = None
    """Autoscaling bounds and targets; unset means replicas is managed by hand."""
    pricing: Pricing | None = None
    """List prices; unset means billing uses its own price list."""
    access: Access = Field(default_factory=Access, json_schema_extra={"default": {}})
    """Tenants allowed to use the model."""
    cache: ModelCache | None = None
    """A PersistentVolumeClaim that caches downloaded weights across restarts; none when unset."""

    @model_validator(mode="after")
    def _cross_field(self) -> ModelDeploymentSpec:
        scaling = self.scaling
        if scaling and not scaling.min_replicas <= self.replicas <= scaling.max_replicas:
            raise ValueError(REPLICAS_MESSAGE)
        gpus, per_node = self.parallelism.gpus, self.resources.gpus_per_node
        if gpus > per_node and gpus % per_node:
            raise ValueError(PARALLELISM_MESSAGE)
        return self


class ModelCache(ApiModel):
    """A volume the engine downloads weights into (HF_HOME), shared by the replicas."""

    size: Quantity
    """Requested storage, e.g. 200Gi."""
    storage_class_name: str | None = Field(default=None, max_length=253)
    """StorageClass of the claim; the cluster default when unset."""
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany"] = "ReadWriteMany"
    """ReadWriteMany lets every replica share the cache."""


ModelDeploymentSpec.model_rebuild()
