"""What to change so the observed children match the desired ones (pure).

A child is applied when it is missing or when any field we set differs from what the API server
holds (fields others set or the server defaults are not ours and are ignored). A child we own that
is no longer desired is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Manifest = dict[str, Any]
ChildKey = tuple[str, str]  # (kind, name)


@dataclass(frozen=True)
class Apply:
    manifest: Manifest
    why: Literal["missing", "drifted"]

    @property
    def key(self) -> ChildKey:
        return child_key(self.manifest)


@dataclass(frozen=True)
class Delete:
    api_version: str
    kind: str
    namespace: str
    name: str


Action = Apply | Delete


def child_key(manifest: Manifest) -> ChildKey:
    return manifest["kind"], manifest["metadata"]["name"]


def covers(observed: Any, desired: Any) -> bool:
    """True when `observed` holds every value of `desired` (lists element by element)."""
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return False
        return all(key in observed and covers(observed[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(observed) != len(desired):
            return False
        return all(covers(o, d) for o, d in zip(observed, desired, strict=True))
    return bool(observed == desired)


def _owned_by(manifest: Manifest, owner_uid: str) -> bool:
    references = manifest.get("metadata", {}).get("ownerReferences") or []
    return any(reference.get("uid") == owner_uid for reference in references)


def _comparable(manifest: Manifest) -> Manifest:
    return {key: value for key, value in manifest.items() if key not in ("apiVersion", "kind", "status")}


def plan(desired: list[Manifest], observed: dict[ChildKey, Manifest], owner_uid: str) -> list[Action]:
    """Applies in the order of `desired`, then deletions of owned children no longer desired."""
    actions: list[Action] = []
    for manifest in desired:
        current = observed.get(child_key(manifest))
        if current is None:
            actions.append(Apply(manifest, "missing"))
        elif not covers(current, _comparable(manifest)):
            actions.append(Apply(manifest, "drifted"))
    wanted = {child_key(manifest) for manifest in desired}
    for key, current in sorted(observed.items()):
        if key not in wanted and _owned_by(current, owner_uid):
            metadata = current["metadata"]
            actions.append(Delete(current["apiVersion"], key[0], metadata["namespace"], key[1]))
    return actions
