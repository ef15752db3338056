"""Base classes for the ledger's value objects: snake_case in Python, lowerCamel in JSON."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from modelplex.billing.text import check_storable


class Record(BaseModel):
    """An immutable value the ledger returns; serialise with `model_dump(mode="json", by_alias=True)`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)


class Request(BaseModel):
    """A request body from the admin API or the CLI; unknown fields and text no database can store
    intact (NUL, lone surrogates) are rejected, naming the field."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        return check_storable(value)
