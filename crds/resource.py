"""A whole ModelDeployment object as the operator reads it from the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelplex.crds.labels import API_VERSION, KIND
from modelplex.crds.spec import ModelDeploymentSpec
from modelplex.crds.status import ModelDeploymentStatus


class ObjectMeta(BaseModel):
    """The metadata fields the operator uses; the rest of metadata is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    deletion_timestamp: str | None = Field(default=None, alias="deletionTimestamp")


class ModelDeployment(BaseModel):
    """apiVersion modelplex.dev/v1alpha1, kind ModelDeployment."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)

    @property
    def served_name(self) -> str:
        return self.spec.model.served_name or self.metadata.name

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ModelDeployment:
        return cls.model_validate(body)
