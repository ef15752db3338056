"""The discovery seam: a source publishes whole catalogs (level-based), the gateway routes on the latest.

Sources: a static config file (here), Kubernetes ModelDeployments and the local runtime (they implement
the same protocol). A catalog lists every model with its ready endpoints, its access list and its
routing policy; a source publishes a new catalog whenever anything in it changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from modelplex.gateway.routing.registry import DEFAULT_POLICY, POLICIES


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class EndpointSpec(_Model):
    url: str = Field(pattern=r"^https?://")
    id: str | None = None  # default: host:port of the url
    ready: bool = True  # only ready endpoints receive traffic

    @property
    def name(self) -> str:
        return self.id or self.url.split("://", 1)[1].rstrip("/")


class ModelSpec(_Model):
    name: str = Field(min_length=1)
    deployment: str | None = None  # the ModelDeployment serving it; default: the model name
    access: frozenset[str] = frozenset()  # tenant ids or names; empty: every tenant
    routing: str = DEFAULT_POLICY
    max_in_flight_per_replica: int | None = Field(default=None, gt=0)
    max_model_len: int | None = Field(default=None, gt=0)  # context length; None: the gateway's default
    endpoints: tuple[EndpointSpec, ...] = ()

    @field_validator("routing")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        if value not in POLICIES:
            raise ValueError(f"unknown routing policy {value!r}; known: {', '.join(sorted(POLICIES))}")
        return value

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.name

    def allows(self, tenant_id: str, tenant_name: str) -> bool:
        return not self.access or tenant_id in self.access or tenant_name in self.access


class Catalog(_Model):
    models: tuple[ModelSpec, ...] = ()

    @field_validator("models")
    @classmethod
    def _unique(cls, models: tuple[ModelSpec, ...]) -> tuple[ModelSpec, ...]:
        names = [m.name for m in models]
        if len(names) != len(set(names)):
            raise ValueError("model names must be unique")
        return models


Publish = Callable[[Catalog], Awaitable[None]]


class DiscoverySource(Protocol):
    async def run(self, publish: Publish) -> None:
        """Publish the first catalog promptly, then every change, until cancelled."""
        ...
