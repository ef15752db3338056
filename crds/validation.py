"""What is wrong with a ModelDeployment that fails validation, one line per field, named as in YAML."""

from __future__ import annotations

from pydantic import ValidationError


def field_errors(error: ValidationError) -> list[str]:
    """`spec.parallelism.tensor: Input should be greater than or equal to 1`, one per problem."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(document)"
        lines.append(f"{where}: {item['msg']}")
    return lines
