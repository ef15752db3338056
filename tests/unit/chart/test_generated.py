"""One source for RBAC, the CRD and the values' documentation: the generated files are current, the
chart's CRD is the same bytes as crds/, and the rules grant nothing beyond what each component uses."""

from __future__ import annotations

from typing import Any

import yaml

from modelplex.crds.generate import CRD_PATH
from modelplex.manifests import generate, values_doc
from modelplex.manifests.rbac import GATEWAY, OPERATOR


def test_every_generated_file_is_current() -> None:
    assert generate.stale() == [], "run: python -m modelplex.manifests.generate"


def test_the_chart_carries_the_crd_byte_for_byte() -> None:
    assert generate.CHART_CRD.read_bytes() == CRD_PATH.read_bytes()


def _documents(path: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((generate.ROOT / path).read_text()))


def _verbs(documents: list[dict[str, Any]], resource: str) -> set[str]:
    return {
        verb
        for doc in documents
        if doc["kind"] in ("ClusterRole", "Role")
        for rule in doc["rules"]
        if resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_plain_manifests_hold_exactly_the_rules() -> None:
    operator = _documents("deploy/operator/rbac.yaml")
    gateway = _documents("deploy/gateway/rbac.yaml")
    cluster_role = next(d for d in operator if d["kind"] == "ClusterRole")
    assert cluster_role["rules"] == [rule.to_manifest() for rule in OPERATOR.cluster_rules]
    role = next(d for d in operator if d["kind"] == "Role")
    assert role["rules"] == [rule.to_manifest() for rule in OPERATOR.namespace_rules]
    assert _verbs(gateway, "modeldeployments") == {"list", "watch"}
    assert _verbs(gateway, "endpointslices") == {"list", "watch"}
    assert not any(d["kind"] == "Role" for d in gateway)
    assert [r.to_manifest() for r in GATEWAY.cluster_rules] == next(
        d for d in gateway if d["kind"] == "ClusterRole"
    )["rules"]


def test_no_identity_reads_secrets_or_gets_anything() -> None:
    for identity in (OPERATOR, GATEWAY):
        for rule in identity.cluster_rules + identity.namespace_rules:
            assert "secrets" not in rule.resources, identity.component
            assert "configmaps" not in rule.resources, identity.component
            assert "*" not in rule.verbs + rule.resources + rule.api_groups, identity.component
            assert "get" not in rule.verbs, identity.component


def test_every_value_is_documented() -> None:
    assert values_doc.undocumented((generate.CHART / "values.yaml").read_text()) == []


def test_the_readme_lists_every_documented_value() -> None:
    readme = (generate.CHART / "README.md").read_text()
    documented, _ = values_doc.parse((generate.CHART / "values.yaml").read_text())
    assert len(documented) > 60
    for item in documented:
        assert f"| `{'.'.join(item.path)}` |" in readme


def test_a_key_without_a_comment_is_found() -> None:
    text = "a:\n  # -- documented\n  b: 1\n  c: 2\n# -- a map documented as a whole\nd:\n  e: 1\n"
    assert values_doc.undocumented(text) == ["a.c"]
    documented, _ = values_doc.parse(text)
    assert [(d.path, d.description) for d in documented] == [
        (("a", "b"), "documented"),
        (("d",), "a map documented as a whole"),
    ]
