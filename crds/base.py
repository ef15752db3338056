"""The base of every API model: camelCase on the wire, snake_case in Python, no unknown fields."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Attribute docstrings become the field descriptions of the generated CRD schema."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        use_attribute_docstrings=True,
    )


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


# The URI forms a model or adapter may be loaded from; the same pattern is checked at admission.
SOURCE_PATTERN = (
    r"^(hf://[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*"
    r"|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?"
    r"|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[^\s]*"
    r"|file:///[^\s]+)$"
)
SOURCE_MESSAGE = "must be hf://org/name, s3://bucket/prefix, pvc://claim/path or file:///path"
SOURCE_RE = re.compile(SOURCE_PATTERN)


def check_source(value: str) -> str:
    if not SOURCE_RE.match(value):
        raise ValueError(SOURCE_MESSAGE)
    return value
