"""ModelDeployment files for the local runtime: loaded and validated exactly like the CRD's schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelplex.crds.labels import API_VERSION, KIND
from modelplex.crds.resource import ModelDeployment
from modelplex.crds.validation import field_errors


class ManifestError(ValueError):
    """A file that is not a valid ModelDeployment; the message names the file and each bad field."""


@dataclass(frozen=True)
class Manifest:
    deployment: ModelDeployment
    path: Path

    @property
    def name(self) -> str:
        return self.deployment.metadata.name


def _document(path: Path, index: int, body: Any) -> ModelDeployment:
    where = f"{path} (document {index + 1})"
    if not isinstance(body, dict):
        raise ManifestError(f"{where}: expected a ModelDeployment mapping, found {type(body).__name__}")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        found = f"{body.get('apiVersion')}/{body.get('kind')}"
        raise ManifestError(f"{where}: expected apiVersion {API_VERSION} and kind {KIND}, found {found}")
    if not isinstance(body.get("metadata"), dict) or not body["metadata"].get("name"):
        raise ManifestError(f"{where}: metadata.name is required")
    try:
        return ModelDeployment.from_body(body)
    except ValidationError as error:
        raise ManifestError(
            "\n".join([f"{where}: invalid ModelDeployment", *(f"  {line}" for line in field_errors(error))])
        ) from None


def load_file(path: Path) -> list[Manifest]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as error:
        raise ManifestError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ManifestError(f"{path}: not valid YAML: {error}") from None
    if not documents:
        raise ManifestError(f"{path}: contains no ModelDeployment")
    return [Manifest(_document(path, i, body), path) for i, body in enumerate(documents)]


def load_all(paths: list[Path]) -> list[Manifest]:
    """Every ModelDeployment in `paths`; all errors of all files at once, and names must be unique."""
    manifests: list[Manifest] = []
    errors: list[str] = []
    for path in paths:
        try:
            manifests += load_file(path)
        except ManifestError as error:
            errors.append(str(error))
    seen: dict[str, Path] = {}
    for manifest in manifests:
        if manifest.name in seen:
            errors.append(
                f"{manifest.path}: ModelDeployment {manifest.name!r} is also defined in {seen[manifest.name]}"
            )
        seen[manifest.name] = manifest.path
    if errors:
        raise ManifestError("\n".join(errors))
    return manifests
