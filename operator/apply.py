"""The only module that writes to the API: server-side apply of children under one field manager,
deletion of children no longer wanted, the status subresource and Events.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelplex.crds import labels
from modelplex.crds.resource import ModelDeployment, ObjectMeta
from modelplex.crds.status import ModelDeploymentStatus
from modelplex.kube.client import KubeClient
from modelplex.kube.errors import ApiError
from modelplex.operator.plan import Action, Apply, Delete
from modelplex.operator.status import Transition

log = logging.getLogger(__name__)
Manifest = dict[str, Any]
COMPONENT = "modelplex-operator"
_PERMANENT = (400, 403, 404, 409, 422)  # retried only on the resync or the next change
_VERBS = {"missing": "Created", "drifted": "Repaired"}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Executed:
    """What a plan's execution did: the API server's answers, so the caller's view stays current."""

    applied: list[Manifest] = field(default_factory=list)
    deleted: list[Delete] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # "Created Service m", "Repaired Deployment m"
    errors: list[str] = field(default_factory=list)  # failures retrying cannot fix

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) or None

    def event(self) -> Transition | None:
        """The Event worth posting: creating children is the expected path; repairs and deletions are news."""
        notable = [change for change in self.changes if not change.startswith("Created")]
        if not notable:
            return None
        reason = "RepairedDrift" if any(c.startswith("Repaired") for c in notable) else "Reconciled"
        return Transition("Normal", reason, "; ".join(self.changes))


class Applier:
    """Executes plans, writes the status subresource and posts Events."""

    def __init__(self, api: KubeClient, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager

    async def execute(self, md: ModelDeployment, actions: list[Action]) -> Executed:
        """Runs `actions` (children are independent, so concurrently). A failure retrying cannot fix
        is reported in the result; any other failure is raised.
        """
        outcomes = await asyncio.gather(*(self._run(action) for action in actions), return_exceptions=True)
        result = Executed()
        for action, outcome in zip(actions, outcomes, strict=True):
            kind, name = action.key if isinstance(action, Apply) else (action.kind, action.name)
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, ApiError) or outcome.status not in _PERMANENT:
                    raise outcome
                log.warning(
                    "Failed to apply %s name=%s namespace=%s status=%s error=%r",
                    kind,
                    name,
                    md.metadata.namespace,
                    outcome.status,
                    outcome.message,
                )
                result.errors.append(f"{kind} {name}: {outcome.message}")
                continue
            verb = "Deleted" if isinstance(action, Delete) else _VERBS[action.why]
            if isinstance(action, Delete):
                result.deleted.append(action)
            else:
                result.applied.append(outcome)
            log.info(
                "%s %s name=%s namespace=%s owner=%s",
                verb,
                kind,
                name,
                md.metadata.namespace,
                md.metadata.name,
            )
            result.changes.append(f"{verb} {kind} {name}")
        return result

    async def _run(self, action: Action) -> Manifest:
        if isinstance(action, Apply):
            return await self.api.apply(action.manifest, self.field_manager)
        await self.api.delete(action.api_version, action.kind, action.namespace, action.name)
        return {}

    async def scale(self, meta: ObjectMeta, replicas: int, field_manager: str) -> None:
        """spec.replicas through the scale subresource: the autoscaler's only write to the spec."""
        await self.api.patch_scale(
            labels.API_VERSION, labels.KIND, meta.namespace, meta.name, replicas, field_manager
        )

    async def write_status(self, namespace: str, name: str, status: ModelDeploymentStatus) -> Manifest:
        body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        result = await self.api.patch_status(namespace, name, body)
        log.debug("Updated status name=%s namespace=%s", name, namespace)
        return result

    async def event(self, meta: ObjectMeta, transition: Transition) -> None:
        """Posts a Kubernetes Event on the ModelDeployment; a failure is logged, never raised."""
        stamp = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.name}.{uuid.uuid4().hex[:16]}",
                "namespace": meta.namespace,
            },
            "involvedObject": {
                "apiVersion": labels.API_VERSION,
                "kind": labels.KIND,
                "name": meta.name,
                "namespace": meta.namespace,
                "uid": meta.uid,
            },
            "type": transition.type,
            "reason": transition.reason,
            "message": transition.message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.field_manager,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self.api.create(event)
        except ApiError as error:
            log.warning(
                "Failed to post Event reason=%s name=%s error=%r",
                transition.reason,
                meta.name,
                error.message,
            )
