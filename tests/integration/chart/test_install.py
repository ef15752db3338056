"""The chart on the real control plane: every object passes server-side validation (the monitoring
ones against the prometheus-operator's real CRDs); `helm install`; the operator and the gateway run
on this machine with tokens of the chart's own ServiceAccounts and reconcile and discover an example;
each identity is refused what it does not need; `helm upgrade` rolls the gateway, applies a changed
CRD schema and keeps the generated Secret; `helm uninstall` leaves the CRD and the ModelDeployments.

kwok plays the kubelets: pods are Running and Ready without running an image, Jobs' pods succeed."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from modelplex.crds.labels import CRD_NAME
from modelplex.devcluster.cluster import DevCluster
from mpxtest.cluster import apply_manifest, fresh_namespace
from mpxtest.helm import (
    CHART,
    PROFILES,
    RULE_ERRORS,
    SCHEMA_ERRORS,
    Helm,
    chart_copy,
    monitoring_crds,
    profile_flags,
    token_kubeconfig,
)
from mpxtest.operatorproc import KUBECTL, MODELPLEX, Kit, OperatorProcess
from mpxtest.upstream import free_socket
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster

RELEASE = "mpx"
FULLNAME = "mpx-modelplex"
VALUES: dict[str, Any] = {
    "database": {"existingSecret": "ledger-db"},
    "redis": {"url": "redis://redis:6379/0"},
    "gateway": {"replicas": 2},
}


def _established(dynamic: DynamicClient, name: str) -> bool:
    crds = dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    conditions = crds.get(name=name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


@pytest.fixture(scope="module")
def monitoring_api(dynamic: DynamicClient) -> None:
    """The cluster serves monitoring.coreos.com/v1, from the pinned prometheus-operator's CRDs."""
    crds = monitoring_crds()
    for crd in crds:
        apply_manifest(dynamic, crd)
    names: list[str] = [crd["metadata"]["name"] for crd in crds]
    eventually(lambda: all(_established(dynamic, n) for n in names), what=f"{names} to be established")


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_object_passes_server_side_validation(
    helm: Helm,
    dev_cluster: DevCluster,
    kube: client.ApiClient,
    monitoring_api: None,
    crd: None,
    profile: str,
    tmp_path: Path,
) -> None:
    chart = chart_copy(tmp_path, dashboards=True, alerts=True)
    with fresh_namespace(kube, "chart") as namespace:
        values = {**PROFILES[profile], "networkPolicy": {"engineNamespaces": [namespace]}}
        rendered = helm.template(values, *profile_flags(profile), chart=chart, namespace=namespace)
        kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
        if profile == "monitoring":
            assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"} <= kinds
        result = _kubectl(
            dev_cluster.kubeconfig,
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "--server-side",
            "--force-conflicts",
            "--field-manager=chart-dry-run",
            "-f",
            "-",
            stdin=rendered,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("(server dry run)") == rendered.count("\nkind: ")


@pytest.mark.parametrize(("values", "named"), [SCHEMA_ERRORS[0], SCHEMA_ERRORS[1], *RULE_ERRORS])
def test_install_with_bad_values_is_refused_naming_them(
    helm: Helm, dev_cluster: DevCluster, values: dict[str, Any], named: str
) -> None:
    name = "refused"
    args = ("install", name, str(CHART), "--namespace", "default", "-f", str(helm.values_file(name, values)))
    result = helm.run(*args, kubeconfig=dev_cluster.kubeconfig)
    assert result.returncode != 0
    assert named in result.stderr
    assert helm.run("status", name, "-n", "default", kubeconfig=dev_cluster.kubeconfig).returncode != 0


@dataclass
class Release:
    namespace: str
    helm: Helm
    kubeconfig: Path  # the cluster admin's: helm acts as the person installing the chart

    def helm_run(self, *args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
        return self.helm.run(
            *args, RELEASE, str(chart), "--namespace", self.namespace, kubeconfig=self.kubeconfig
        )

    def upgrade(self, *flags: str, chart: Path = CHART) -> None:
        result = self.helm_run(
            "upgrade", "--reuse-values", "--wait", "--timeout", "120s", *flags, chart=chart
        )
        assert result.returncode == 0, result.stderr

    def revision(self) -> int:
        result = self.helm.run(
            "history", RELEASE, "-n", self.namespace, "-o", "json", kubeconfig=self.kubeconfig
        )
        return int(json.loads(result.stdout)[-1]["revision"])


def _adopt_crd(kube: client.ApiClient, namespace: str) -> None:
    """A CRD that `kubectl apply` installed (other tests of this session do) is handed to the release,
    as an admin moving to the chart would: Helm adopts objects carrying its ownership metadata."""
    extensions = client.ApiextensionsV1Api(kube)
    try:
        extensions.read_custom_resource_definition(CRD_NAME)
    except client.ApiException as error:
        if error.status == 404:
            return
        raise
    metadata = {
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": namespace},
    }
    extensions.patch_custom_resource_definition(CRD_NAME, {"metadata": metadata})


@pytest.fixture(scope="module")
def release(
    helm: Helm, dev_cluster: DevCluster, kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    with fresh_namespace(kube, "chart") as namespace:
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name="ledger-db"),
            string_data={"url": "postgresql://modelplex:secret@postgres:5432/modelplex"},
        )
        client.CoreV1Api(kube).create_namespaced_secret(namespace, secret)
        _adopt_crd(kube, namespace)
        values = {**VALUES, "networkPolicy": {"engineNamespaces": [namespace]}}
        began = time.monotonic()
        result = helm.run(
            "install",
            RELEASE,
            str(CHART),
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            "120s",
            "-f",
            str(helm.values_file("install", values)),
            kubeconfig=dev_cluster.kubeconfig,
        )
        assert result.returncode == 0, result.stderr
        assert "Next:" in result.stdout
        assert "/admin/v1/tenants/acme/keys" in result.stdout
        print(f"helm install --wait took {time.monotonic() - began:.1f} s")
        yield Release(namespace, helm, dev_cluster.kubeconfig)
        helm.run("uninstall", RELEASE, "-n", namespace, "--wait", kubeconfig=dev_cluster.kubeconfig)


@pytest.fixture(scope="module")
def identities(
    release: Release, kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Kubeconfigs holding TokenRequest tokens of the chart's operator and gateway ServiceAccounts."""
    folder = tmp_path_factory.mktemp("identities")
    return {
        component: token_kubeconfig(
            kube,
            release.kubeconfig,
            release.namespace,
            f"{FULLNAME}-{component}",
            folder / f"{component}.kubeconfig",
        )
        for component in ("operator", "gateway")
    }


def test_install_ran_the_migration_and_started_every_component(
    release: Release, kube: client.ApiClient
) -> None:
    apps = client.AppsV1Api(kube)
    for name in (f"{FULLNAME}-operator", f"{FULLNAME}-gateway"):
        deployment: Any = apps.read_namespaced_deployment(name, release.namespace)
        assert deployment.status.ready_replicas == deployment.spec.replicas, name
    # The hook Job succeeded and was deleted (hook-succeeded): no Job is left behind.
    assert not client.BatchV1Api(kube).list_namespaced_job(release.namespace).items
    secret: Any = client.CoreV1Api(kube).read_namespaced_secret(f"{FULLNAME}-generated", release.namespace)
    assert len(base64.b64decode(secret.data["admin-token"])) == 48
    assert len(base64.b64decode(secret.data["key-pepper"])) == 64


def test_the_chart_identities_reconcile_and_discover_an_example(
    release: Release, identities: dict[str, Path], kit: Kit, tmp_path: Path
) -> None:
    env = {
        "MODELPLEX_OPERATOR_GATEWAY_SERVICE": f"{release.namespace}/{FULLNAME}-gateway",
        "MODELPLEX_OPERATOR_NAMESPACES": json.dumps([release.namespace]),
    }
    operator = OperatorProcess(identities["operator"], tmp_path / "operator.log", env)
    operator.start()
    gateway = None
    try:
        kit.wait_free_gpus(1)
        kit.apply_example("single-gpu", release.namespace)
        kit.wait_condition(release.namespace, "llama-8b", "True", "AllReplicasReady")
        tenants = [{"name": "acme", "keys": ["mpx-acme"]}]
        (tmp_path / "tenants.json").write_text(json.dumps({"tenants": tenants}))
        sock = free_socket()
        port = sock.getsockname()[1]
        sock.close()
        command = [MODELPLEX, "gateway", "run", "--port", str(port), "--discovery", "kubernetes"]
        command += ["--namespace", release.namespace, "--kubeconfig", str(identities["gateway"])]
        command += ["--config", str(tmp_path / "tenants.json")]
        journal = {"MODELPLEX_GATEWAY_JOURNAL_DIR": str(tmp_path / "journal"), "PATH": "/usr/bin:/bin"}
        gateway = subprocess.Popen(command, env=journal, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def listed() -> bool:
            try:
                body = httpx.get(
                    f"http://127.0.0.1:{port}/v1/models", headers={"authorization": "Bearer mpx-acme"}
                )
            except httpx.TransportError:
                return False
            return "meta-llama/Llama-3.1-8B-Instruct" in [m["id"] for m in body.json()["data"]]

        eventually(listed, timeout=30, what="the gateway to discover the example")
    finally:
        output = ""
        if gateway is not None:
            gateway.terminate()
            output = gateway.communicate(timeout=30)[0].decode()
        operator.stop()
    assert "Failed to watch" not in output, output
    assert "Forbidden" not in operator.logs(), operator.logs()


CAN_I = [
    # (component, kubectl auth can-i arguments, allowed); "NS" is the release's namespace
    ("gateway", ["list", "modeldeployments.modelplex.dev", "-A"], True),
    ("gateway", ["watch", "endpointslices.discovery.k8s.io", "-A"], True),
    ("gateway", ["create", "modeldeployments.modelplex.dev", "-n", "NS"], False),
    ("gateway", ["patch", "deployments.apps", "-n", "NS"], False),
    ("gateway", ["get", "secrets", "-n", "NS"], False),
    ("gateway", ["list", "pods", "-A"], False),
    ("gateway", ["delete", "endpointslices.discovery.k8s.io", "-n", "NS"], False),
    ("operator", ["patch", "deployments.apps", "-n", "default"], True),
    ("operator", ["patch", "modeldeployments.modelplex.dev", "--subresource=scale", "-n", "default"], True),
    ("operator", ["list", "endpointslices.discovery.k8s.io", "-n", "NS"], True),
    ("operator", ["list", "endpointslices.discovery.k8s.io", "-n", "default"], False),
    ("operator", ["get", "secrets", "-A"], False),
    ("operator", ["list", "secrets", "-n", "NS"], False),
    ("operator", ["patch", "modeldeployments.modelplex.dev", "-n", "default"], False),
    ("operator", ["delete", "modeldeployments.modelplex.dev", "-n", "default"], False),
    ("operator", ["create", "clusterrolebindings.rbac.authorization.k8s.io"], False),
]


def test_each_identity_is_refused_what_it_does_not_need(
    release: Release, identities: dict[str, Path]
) -> None:
    wrong = []
    for component, args, allowed in CAN_I:
        resolved = [release.namespace if a == "NS" else a for a in args]
        result = _kubectl(identities[component], "auth", "can-i", *resolved)
        answer = result.stdout.strip()
        assert answer in ("yes", "no"), result.stderr
        if (answer == "yes") != allowed:
            wrong.append(f"{component} can-i {' '.join(resolved)}: {answer}")
    assert wrong == []


def test_upgrade_rolls_the_gateway_and_keeps_the_generated_secret(
    release: Release, kube: client.ApiClient
) -> None:
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    name = f"{FULLNAME}-gateway"
    before: Any = apps.read_namespaced_deployment(name, release.namespace)
    secret = core.read_namespaced_secret(f"{FULLNAME}-generated", release.namespace).data
    release.upgrade("--set", "gateway.routing.queueMaxSize=100")
    after: Any = apps.read_namespaced_deployment(name, release.namespace)
    assert after.metadata.generation > before.metadata.generation
    env = {e.name: e.value for e in after.spec.template.spec.containers[0].env}
    assert env["MODELPLEX_GATEWAY_QUEUE_MAX_SIZE"] == "100"
    selector = "app.kubernetes.io/component=gateway"
    sets: list[Any] = apps.list_namespaced_replica_set(release.namespace, label_selector=selector).items
    current = [s for s in sets if s.spec.replicas and s.status.ready_replicas == s.spec.replicas]
    assert len(sets) == 2
    assert len(current) == 1
    assert core.read_namespaced_secret(f"{FULLNAME}-generated", release.namespace).data == secret


def test_upgrade_to_sqlite_with_two_replicas_is_refused(release: Release) -> None:
    revision = release.revision()
    result = release.helm_run("upgrade", "--reuse-values", "--set", "database.existingSecret=")
    assert result.returncode != 0
    assert "database: SQLite serves one gateway replica only" in result.stderr
    assert release.revision() == revision


def _with_note(manifest: dict[str, Any]) -> str:
    note = {**manifest, "spec": {**manifest["spec"], "chartNote": "from the upgraded schema"}}
    return yaml.safe_dump({**note, "metadata": {"name": "noted"}})


def test_upgrade_applies_a_changed_crd_schema(release: Release, tmp_path: Path) -> None:
    example = yaml.safe_load((CHART.parents[1] / "deploy" / "examples" / "single-gpu.yaml").read_text())
    dry_run = ("apply", "-n", release.namespace, "--dry-run=server", "--validate=strict", "-f", "-")
    refused = _kubectl(release.kubeconfig, *dry_run, stdin=_with_note(example))
    assert refused.returncode != 0
    assert "chartNote" in refused.stderr, refused.stderr

    chart = chart_copy(tmp_path)
    crd_file = chart / "api" / f"{CRD_NAME}.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["chartNote"] = {"type": "string", "description": "A field only this test's chart has."}
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    try:
        release.upgrade(chart=chart)

        def accepted_now() -> subprocess.CompletedProcess[str] | None:
            result = _kubectl(release.kubeconfig, *dry_run, stdin=_with_note(example))
            return result if result.returncode == 0 else None

        accepted = eventually(accepted_now, timeout=30, what="the new field to be accepted")
        assert "created (server dry run)" in accepted.stdout
    finally:
        release.upgrade()  # back to the real schema for the rest of the session


def test_uninstall_keeps_the_crd_and_the_model_deployments(release: Release, kube: client.ApiClient) -> None:
    assert client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", release.namespace, "modeldeployments", "llama-8b"
    )
    result = release.helm.run(
        "uninstall", RELEASE, "-n", release.namespace, "--wait", kubeconfig=release.kubeconfig
    )
    assert result.returncode == 0, result.stderr
    assert "kept due to the resource policy" in result.stdout + result.stderr
    client.ApiextensionsV1Api(kube).read_custom_resource_definition(CRD_NAME)
    kept: Any = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", release.namespace, "modeldeployments", "llama-8b"
    )
    assert kept["metadata"]["name"] == "llama-8b"
    assert (
        not client.AppsV1Api(kube)
        .list_namespaced_deployment(release.namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}")
        .items
    )
    roles = client.RbacAuthorizationV1Api(kube).list_cluster_role(
        label_selector=f"app.kubernetes.io/instance={RELEASE}"
    )
    assert not roles.items
    client.CoreV1Api(kube).read_namespaced_secret(f"{FULLNAME}-generated", release.namespace)  # kept
