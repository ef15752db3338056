"""The only module that writes to the API: server-side apply of children under one field manager,
deletion of children no longer wanted, the status subresource and Events.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from modelplex.crds import labels
from modelplex.crds.resource import ModelDeployment
from modelplex.operator.kube import ApiError, KubeApi
from modelplex.operator.plan import Action, Apply, Delete
from modelplex.operator.status import Transition

log = logging.getLogger(__name__)
Manifest = dict[str, Any]
COMPONENT = "modelplex-operator"
_PERMANENT = (400, 403, 404, 409, 422)  # retried only on the resync or the next change
_VERBS = {"missing": "Created", "drifted": "Repaired"}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Applier:
    """Executes plans; returns what the API server answered so the caller's view stays current."""

    def __init__(self, api: KubeApi, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager

    async def execute(
        self, md: ModelDeployment, actions: list[Action]
    ) -> tuple[list[Manifest], list[Delete], str | None]:
        """Runs `actions` (children are independent, so concurrently), then posts one Event naming
        what changed. Returns what was applied and deleted, and the message of a failure retrying
        cannot fix; raises on any other failure.
        """
        outcomes = await asyncio.gather(*(self._run(action) for action in actions), return_exceptions=True)
        applied: list[Manifest] = []
        deleted: list[Delete] = []
        done: list[str] = []
        errors: list[str] = []
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
                errors.append(f"{kind} {name}: {outcome.message}")
                continue
            verb = "Deleted" if isinstance(action, Delete) else _VERBS[action.why]
            if isinstance(action, Delete):
                deleted.append(action)
            else:
                applied.append(outcome)
            log.info(
                "%s %s name=%s namespace=%s owner=%s",
                verb,
                kind,
                name,
                md.metadata.namespace,
                md.metadata.name,
            )
            done.append(f"{verb} {kind} {name}")
        # Creating children is the expected path; only repairs and deletions are worth an Event.
        notable = [d for d in done if not d.startswith("Created")]
        if notable:
            reason = "RepairedDrift" if any(d.startswith("Repaired") for d in notable) else "Reconciled"
            await self.event(md, Transition("Normal", reason, "; ".join(done)))
        return applied, deleted, "; ".join(errors) or None

    async def _run(self, action: Action) -> Manifest:
        if isinstance(action, Apply):
            return await self.api.apply(action.manifest, self.field_manager)
        await self.api.delete(action.api_version, action.kind, action.namespace, action.name)
        return {}

    async def write_status(self, md: ModelDeployment, status: Manifest) -> Manifest:
        result = await self.api.patch_status(md.metadata.namespace, md.metadata.name, status)
        log.debug("Updated status name=%s namespace=%s", md.metadata.name, md.metadata.namespace)
        return result

    async def event(self, md: ModelDeployment, transition: Transition) -> None:
        """Posts a Kubernetes Event on the ModelDeployment; a failure is logged, never raised."""
        stamp = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{md.metadata.name}.{uuid.uuid4().hex[:16]}",
                "namespace": md.metadata.namespace,
            },
            "involvedObject": {
                "apiVersion": labels.API_VERSION,
                "kind": labels.KIND,
                "name": md.metadata.name,
                "namespace": md.metadata.namespace,
                "uid": md.metadata.uid,
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
                md.metadata.name,
                error.message,
            )
