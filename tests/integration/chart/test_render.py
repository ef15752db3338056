"""The chart rendered by the real helm (no cluster): lint, the three value profiles, standard labels on
every object, refusals of bad values naming what is wrong, and what each switch renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplex.crds.generate import CRD_PATH
from modelplex.manifests.rbac import GATEWAY, OPERATOR
from mpxtest.helm import (
    CHART,
    FIXTURE_ALERTS,
    FIXTURE_DASHBOARD,
    PROFILES,
    RULE_ERRORS,
    SCHEMA_ERRORS,
    Helm,
    chart_copy,
    profile_flags,
)

STANDARD_LABELS = {
    "app.kubernetes.io/name": "modelplex",
    "app.kubernetes.io/instance": "modelplex",
    "app.kubernetes.io/version": "0.1.0",
    "app.kubernetes.io/part-of": "modelplex",
    "app.kubernetes.io/managed-by": "Helm",
}


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _one(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    (found,) = [o for o in _by_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    return found


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_lint_strict_passes(helm: Helm, profile: str) -> None:
    result = helm.run("lint", "--strict", str(CHART), "-f", str(helm.values_file(profile, PROFILES[profile])))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_object_and_pod_carries_the_standard_labels(helm: Helm, profile: str) -> None:
    objects = helm.objects(PROFILES[profile], *profile_flags(profile))
    assert len(objects) >= 18
    for obj in objects:
        labelled = [obj["metadata"]]
        if "template" in obj.get("spec", {}):
            labelled.append(obj["spec"]["template"]["metadata"])
        for metadata in labelled:
            labels = metadata.get("labels") or {}
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            assert {k: labels.get(k) for k in STANDARD_LABELS} == STANDARD_LABELS, where
            assert labels.get("app.kubernetes.io/component"), where


def test_minimal_is_one_gateway_on_sqlite(helm: Helm) -> None:
    objects = helm.objects(PROFILES["minimal"])
    gateway = _one(objects, "Deployment", "-gateway")
    assert gateway["spec"]["replicas"] == 1
    assert gateway["spec"]["strategy"]["type"] == "Recreate"
    assert _env(gateway)["MODELPLEX_DATABASE_URL"].startswith("sqlite:////var/lib/modelplex/ledger/")
    assert "MODELPLEX_REDIS_URL" not in _env(gateway)
    claim = _one(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not _by_kind(objects, "Job")
    assert not _by_kind(objects, "HorizontalPodAutoscaler")
    assert not _by_kind(objects, "ServiceMonitor")  # the cluster does not serve monitoring.coreos.com/v1


def test_production_migrates_in_a_hook_and_shares_limits(helm: Helm) -> None:
    objects = helm.objects(PROFILES["production"])
    gateway = _one(objects, "Deployment", "-gateway")
    env = _env(gateway)
    assert "replicas" not in gateway["spec"]  # the HorizontalPodAutoscaler owns it
    assert env["MODELPLEX_DATABASE_URL"] == {"secretKeyRef": {"name": "modelplex-db", "key": "url"}}
    assert env["MODELPLEX_BILLING_AUTO_MIGRATE"] == "false"
    assert env["MODELPLEX_REDIS_URL"] == "redis://redis.modelplex-system:6379/0"
    job = _one(objects, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["ledger", "migrate"]
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    hpa = _one(objects, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 6)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert not _by_kind(objects, "PersistentVolumeClaim")


def test_monitoring_renders_only_where_the_api_is_served(helm: Helm) -> None:
    objects = helm.objects(PROFILES["monitoring"], *profile_flags("monitoring"))
    monitors = _by_kind(objects, "ServiceMonitor") + _by_kind(objects, "PodMonitor")
    assert sorted(m["metadata"]["name"] for m in monitors) == [
        "modelplex-engines",
        "modelplex-gateway",
        "modelplex-operator",
    ]
    assert all(m["metadata"]["labels"]["release"] == "kube-prometheus" for m in monitors)
    off = {**PROFILES["monitoring"], "monitoring": {"serviceMonitor": {"enabled": False}}}
    assert not _by_kind(helm.objects(off, *profile_flags("monitoring")), "ServiceMonitor")


def _refused(helm: Helm, *args: str, values: dict[str, Any]) -> str:
    result = helm.run(*args, str(CHART), "-f", str(helm.values_file("bad", values)))
    assert result.returncode != 0, args
    return result.stdout + result.stderr


@pytest.mark.parametrize(("values", "named"), SCHEMA_ERRORS)
def test_values_outside_the_schema_are_refused_naming_them(
    helm: Helm, values: dict[str, Any], named: str
) -> None:
    assert named in _refused(helm, "template", "modelplex", values=values)
    assert named in _refused(helm, "lint", "--strict", values=values)


@pytest.mark.parametrize(("values", "named"), RULE_ERRORS)
def test_values_breaking_a_rule_are_refused_saying_why(
    helm: Helm, values: dict[str, Any], named: str
) -> None:
    assert named in _refused(helm, "template", "modelplex", values=values)


def test_the_admin_api_is_on_the_tenant_service_only_when_asked(helm: Helm) -> None:
    def ports(values: dict[str, Any]) -> list[str]:
        service = _one(helm.objects(values), "Service", "-gateway")
        return [p["name"] for p in service["spec"]["ports"]]

    assert ports({}) == ["http"]
    assert ports({"admin": {"exposeOnTenantService": True}}) == ["http", "admin"]
    admin = _one(helm.objects({}), "Service", "-admin")
    assert [(p["name"], p["port"]) for p in admin["spec"]["ports"]] == [("admin", 8081)]


def test_the_operator_reports_capacity_to_the_admin_service_with_the_admin_token(helm: Helm) -> None:
    objects = helm.objects({})
    operator = _env(_one(objects, "Deployment", "-operator"))
    admin = _one(objects, "Service", "-admin")
    name, port = admin["metadata"]["name"], admin["spec"]["ports"][0]["port"]
    assert operator["MODELPLEX_OPERATOR_LEDGER_URL"] == f"http://{name}.modelplex-system.svc:{port}"
    token = operator["MODELPLEX_OPERATOR_LEDGER_ADMIN_TOKEN"]
    assert token == _env(_one(objects, "Deployment", "-gateway"))["MODELPLEX_BILLING_ADMIN_TOKEN"]
    assert token == {"secretKeyRef": {"name": "modelplex-generated", "key": "admin-token"}}
    assert operator["MODELPLEX_OPERATOR_CAPACITY_REPORT_SECONDS"] == "30"

    values = {
        "admin": {"existingSecret": "ops-admin", "secretKey": "bearer", "service": {"port": 9443}},
        "operator": {"capacity": {"reportSeconds": 15}},
    }
    operator = _env(_one(helm.objects(values), "Deployment", "-operator"))
    assert operator["MODELPLEX_OPERATOR_LEDGER_URL"] == "http://modelplex-admin.modelplex-system.svc:9443"
    assert operator["MODELPLEX_OPERATOR_LEDGER_ADMIN_TOKEN"] == {
        "secretKeyRef": {"name": "ops-admin", "key": "bearer"}
    }
    assert operator["MODELPLEX_OPERATOR_CAPACITY_REPORT_SECONDS"] == "15"

    off = _env(_one(helm.objects({"operator": {"capacity": {"enabled": False}}}), "Deployment", "-operator"))
    assert not [name for name in off if "LEDGER" in name or "CAPACITY" in name]


def test_the_crd_is_the_source_with_labels_and_kept(helm: Helm) -> None:
    rendered = helm.template({}, "--show-only", "templates/crd.yaml")
    crd = yaml.safe_load(rendered)
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    inserted = yaml.safe_dump({"metadata": {k: crd["metadata"][k] for k in ("annotations", "labels")}})
    assert len(inserted.splitlines()) > 5
    kept = [line for line in rendered.splitlines() if not line.startswith("# Source:") and line != "---"]
    text = "\n".join(kept) + "\n"
    labels_block = text.split("metadata:\n", 1)[1].split("  name: modeldeployments", 1)[0]
    assert text.replace(labels_block, "", 1) == CRD_PATH.read_text()
    assert not _by_kind(helm.objects({"crd": {"install": False}}), "CustomResourceDefinition")


def test_rbac_comes_from_the_rules(helm: Helm) -> None:
    objects = helm.objects({})
    for identity in (OPERATOR, GATEWAY):
        role = _one(objects, "ClusterRole", f"-{identity.component}")
        assert role["rules"] == [rule.to_manifest() for rule in identity.cluster_rules]
    role = _one(objects, "Role", "-operator")
    assert role["rules"] == [rule.to_manifest() for rule in OPERATOR.namespace_rules]
    assert not [o for o in _by_kind(objects, "Role") if o["metadata"]["name"].endswith("-gateway")]


def test_engines_accept_only_the_gateway_and_the_operator(helm: Helm) -> None:
    objects = helm.objects({"networkPolicy": {"engineNamespaces": ["team-a", "team-b"]}})
    engines = [o for o in _by_kind(objects, "NetworkPolicy") if o["metadata"]["name"].endswith("-engines")]
    assert sorted(o["metadata"]["namespace"] for o in engines) == ["team-a", "team-b"]
    ingress = engines[0]["spec"]["ingress"]
    components = [
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in ingress[0]["from"]
    ]
    assert components == ["gateway", "operator"]
    assert ingress[0]["ports"] == [{"port": 8000}]
    assert ingress[1]["from"][0]["podSelector"]["matchLabels"]["modelplex.dev/component"] == "engine"
    gateway = _one(objects, "NetworkPolicy", "-gateway")
    assert gateway["spec"]["ingress"][1] == {"ports": [{"port": "admin"}], "from": [{"podSelector": {}}]}
    assert not _by_kind(helm.objects({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_dashboards_and_alert_rules_come_from_the_files(helm: Helm, tmp_path: Path) -> None:
    chart_with_files = chart_copy(tmp_path, dashboards=True)
    flags = profile_flags("monitoring")
    objects = helm.objects({}, *flags, chart=chart_with_files)
    dashboard = _one(objects, "ConfigMap", "-dashboard-gateway-overview")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"] == {"Gateway_Overview.json": FIXTURE_DASHBOARD}
    assert not _by_kind(objects, "PrometheusRule")  # no files/alerts.yaml

    for text in (
        yaml.safe_dump(FIXTURE_ALERTS),
        yaml.safe_dump(FIXTURE_ALERTS["groups"]),
    ):  # `groups:` or the bare list
        (chart_with_files / "files" / "alerts.yaml").write_text(text)
        rule = _one(
            helm.objects({"monitoring": {"labels": {"team": "ml"}}}, *flags, chart=chart_with_files),
            "PrometheusRule",
        )
        assert rule["spec"] == FIXTURE_ALERTS
        assert rule["metadata"]["labels"]["team"] == "ml"
    assert not _by_kind(helm.objects({}, chart=chart_with_files), "PrometheusRule")  # no monitoring API
    off = {"monitoring": {"dashboards": {"enabled": False}}}
    assert not _by_kind(helm.objects(off, chart=chart_with_files), "ConfigMap")
