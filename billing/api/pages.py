"""List responses in the OpenAI shape: {"object": "list", "data": [...]}."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from modelplex.billing.schemas import Record

T = TypeVar("T")


class Page(Record, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
