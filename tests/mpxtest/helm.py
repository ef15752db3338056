"""The chart and the real helm that deploy/dev-cluster builds (`helm` fixture), value profiles, the
prometheus-operator's monitoring CRDs, and kubeconfigs holding a ServiceAccount's token."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import modelplex
from modelplex.devcluster.binaries import ensure_binaries
from modelplex.devcluster.config import DevClusterSettings

ROOT = Path(modelplex.__file__).parent
CHART = ROOT / "charts" / "modelplex"
MONITORING_CRDS_SCRIPT = ROOT / "deploy" / "dev-cluster" / "monitoring-crds.sh"
MONITORING_API = "monitoring.coreos.com/v1"

# The three value profiles every rendering test goes through.
PROFILES: dict[str, dict[str, Any]] = {
    "minimal": {},
    "production": {
        "database": {"existingSecret": "modelplex-db"},
        "redis": {"url": "redis://redis.modelplex-system:6379/0"},
        "gateway": {"replicas": 3, "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 6}},
    },
    "monitoring": {
        "monitoring": {"labels": {"release": "kube-prometheus"}},
        "gateway": {"replicas": 1},
    },
}


# Bad values and the words that must name what is wrong. Outside values.schema.json:
SCHEMA_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"gateway": {"replicass": 3}}, "additional properties 'replicass' not allowed"),
    ({"gateway": {"replicas": "three"}}, "at '/gateway/replicas': got string, want integer"),
    ({"monitoring": {"dashboards": {"enabled": "yes"}}}, "/monitoring/dashboards/enabled"),
    ({"databse": {}}, "additional properties 'databse' not allowed"),
    ({"logLevel": "LOUD"}, "/logLevel"),
    ({"operator": {"capacity": {"reportSeconds": 90}}}, "/operator/capacity/reportSeconds"),
]
# Rules across values, checked by the templates: `helm lint` only reports a template's `fail` as INFO,
# so these are refused by `helm template`, `install` and `upgrade`, not by `lint`.
RULE_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"gateway": {"replicas": 3}, "redis": {"url": "redis://r:6379"}}, "database: SQLite serves one gateway"),
    ({"gateway": {"replicas": 3}, "database": {"existingSecret": "db"}}, "redis: 3 gateway replicas need"),
    ({"gateway": {"autoscaling": {"enabled": True}}}, "allows 10"),
]


@dataclass(frozen=True)
class Helm:
    binary: Path
    home: Path  # HELM_CACHE_HOME, HELM_CONFIG_HOME and HELM_DATA_HOME live here, not in ~

    def run(
        self, *args: str, kubeconfig: Path | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        return subprocess.run(
            [str(self.binary), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def values_file(self, name: str, values: dict[str, Any]) -> Path:
        path = self.home / f"values-{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        return path

    def template(
        self, values: dict[str, Any], *flags: str, chart: Path = CHART, namespace: str = "modelplex-system"
    ) -> str:
        """`helm template` of the chart as release "modelplex"; fails the test with helm's message."""
        result = self.run(
            "template",
            "modelplex",
            str(chart),
            "--namespace",
            namespace,
            "-f",
            str(self.values_file("template", values)),
            *flags,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def objects(self, values: dict[str, Any], *flags: str, chart: Path = CHART) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.template(values, *flags, chart=chart)) if doc]


def profile_flags(name: str) -> tuple[str, ...]:
    """The monitoring profile renders as on a cluster that serves the prometheus-operator's API."""
    return ("--api-versions", MONITORING_API) if name == "monitoring" else ()


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binaries = ensure_binaries(DevClusterSettings().cache_dir)
    return Helm(binaries["helm"], tmp_path_factory.mktemp("helm"))


def monitoring_crds() -> list[dict[str, Any]]:
    """ServiceMonitor, PodMonitor and PrometheusRule CRDs of the pinned prometheus-operator module."""
    result = subprocess.run(
        ["bash", str(MONITORING_CRDS_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    return [yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yaml"))]


def token_kubeconfig(
    kube: client.ApiClient, admin_kubeconfig: Path, namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig for ServiceAccount `namespace/account`, with a token from the TokenRequest API."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    issued: Any = client.CoreV1Api(kube).create_namespaced_service_account_token(account, namespace, request)
    token: str = issued.status.token
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    user = f"{namespace}-{account}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": user, "user": {"token": token}}],
                "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
                "current-context": user,
            }
        )
    )
    return path


FIXTURE_DASHBOARD = '{"title": "Fixture", "panels": []}'
FIXTURE_ALERTS = {
    "groups": [
        {
            "name": "modelplex-fixture",
            "rules": [
                {"alert": "Down", "expr": "up == 0", "annotations": {"summary": "{{ $labels.job }} is down"}}
            ],
        }
    ]
}


def chart_copy(folder: Path, dashboards: bool = False, alerts: bool = False) -> Path:
    """A copy of the chart without its files/, and with a fixture dashboard and alert rules when asked."""
    chart = folder / "modelplex"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    if dashboards:
        (chart / "files" / "dashboards").mkdir(parents=True)
        (chart / "files" / "dashboards" / "Gateway_Overview.json").write_text(FIXTURE_DASHBOARD)
    if alerts:
        (chart / "files").mkdir(exist_ok=True)
        (chart / "files" / "alerts.yaml").write_text(yaml.safe_dump(FIXTURE_ALERTS))
    return chart
