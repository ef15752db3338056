"""values.schema.json is strict at every level and describes exactly the keys of values.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from modelplex.manifests.generate import CHART

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
# Kubernetes API types inside values (an EnvVarSource, a label selector, an affinity term): the API
# server validates them when the object is created; everything around them is strict.
KUBERNETES_TYPES = {
    "operator.extraEnv[].valueFrom",
    "gateway.extraEnv[].valueFrom",
    "networkPolicy.adminFrom[].ipBlock",
    "networkPolicy.adminFrom[].namespaceSelector",
    "networkPolicy.adminFrom[].podSelector",
    *(
        f"{component}.affinity.{kind}"
        for component in ("operator", "gateway")
        for kind in ("nodeAffinity", "podAffinity", "podAntiAffinity")
    ),
}


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _nodes(child, f"{path}.{name}".lstrip("."))
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")
    for alternative in node.get("anyOf", []):
        yield from _nodes(alternative, path)


def test_every_object_is_closed() -> None:
    for path, node in _nodes(SCHEMA):
        if node.get("type") != "object" or path in KUBERNETES_TYPES:
            continue
        closed = node.get("additionalProperties")
        assert closed is False or isinstance(closed, dict), f"{path or '<root>'} accepts any key"


def test_every_node_says_what_it_accepts() -> None:
    for path, node in _nodes(SCHEMA):
        assert {"type", "anyOf"} & set(node), f"{path} has no type"


def _value_paths(tree: Any, path: str = "") -> Iterator[str]:
    if isinstance(tree, dict) and tree:
        for key, child in tree.items():
            yield from _value_paths(child, f"{path}.{key}".lstrip("."))
    else:
        yield path


def _schema_at(path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = SCHEMA
    for key in path.split("."):
        if node is None:
            return None
        properties = node.get("properties")
        if properties is None and isinstance(node.get("additionalProperties"), dict):
            return node  # a typed map (resources, labels): its keys are free
        node = (properties or {}).get(key)
    return node


def test_the_schema_describes_every_value_and_nothing_else() -> None:
    for path in _value_paths(VALUES):
        assert _schema_at(path) is not None, f"values.yaml has {path}, the schema does not"
    top = set(SCHEMA["properties"])
    assert top == set(VALUES), top ^ set(VALUES)
