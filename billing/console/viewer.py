"""Who is looking at the console: the operator (the admin token's holder) or one tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["operator", "tenant"]


@dataclass(frozen=True)
class Viewer:
    role: Role
    tenant_id: str | None = None  # a tenant viewer's own tenant; None for the operator
    tenant_name: str | None = None
    key_id: str | None = None  # the API key a tenant signed in with

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


OPERATOR = Viewer(role="operator")
