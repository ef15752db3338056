"""Kubernetes discovery: ModelDeployments and their ready endpoints, as the gateway's service account.

The operator runs as its own process under its ClusterRole; kwok gives the pods IPs and marks them
Ready; the EndpointSlice controller of the real kube-controller-manager turns them into slices. kwok
pods serve no HTTP, so what is tested is what the gateway would route to, not traffic.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config

from modelplex.gateway.discovery.base import EndpointSpec, ModelSpec
from modelplex.gateway.discovery.kube import KubernetesSource
from modelplex.gateway.discovery.kube_catalog import ROUTING_ANNOTATION, build_catalog
from modelplex.kube.credentials import load_credentials
from mpxtest.cluster import free_gpus
from mpxtest.discovery import RunningSource, model_deployment, serving_pods
from mpxtest.operatorproc import MODELPLEX
from mpxtest.upstream import free_socket
from mpxtest.wait import eventually


def _create(kube: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", body
    )


def _scale(kube: client.ApiClient, namespace: str, name: str, replicas: int) -> None:
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", name, {"spec": {"replicas": replicas}}
    )


def _endpoints(model: ModelSpec | None) -> dict[str, str] | None:
    """Ready endpoints of the model: id -> url."""
    return None if model is None else {e.name: e.url for e in model.endpoints if e.ready}


def _wait_endpoints(
    source: RunningSource, core: client.CoreV1Api, namespace: str, deployment: str, model: str, count: int
) -> dict[str, str]:
    """Waits until the model's ready endpoints are exactly the `count` Ready serving pods."""

    def matches() -> dict[str, str] | None:
        pods = serving_pods(core, namespace, deployment)
        found = _endpoints(source.model(model))
        return found if len(pods) == count and found == pods else None

    return eventually(matches, timeout=60, what=f"{count} ready endpoints of {model} (pods == endpoints)")


@pytest.mark.cluster
def test_publishes_served_name_access_routing_and_ready_pod_endpoints(
    kube: client.ApiClient, operator: Any, namespace: str, discovered: RunningSource
) -> None:
    core = client.CoreV1Api(kube)
    free_gpus(core, 2)
    annotations = {ROUTING_ANNOTATION: "least-load"}
    access = {"tenants": ["acme", "globex"]}
    _create(kube, namespace, model_deployment("alpha", "org/alpha-7b", 2, annotations, access=access))

    endpoints = _wait_endpoints(discovered, core, namespace, "alpha", "org/alpha-7b", 2)
    model = discovered.model("org/alpha-7b")
    assert model is not None
    assert model.deployment == f"{namespace}/alpha"
    assert model.access == frozenset({"acme", "globex"})
    assert model.routing == "least-load"
    assert all(url.endswith(":8000") for url in endpoints.values())
    assert [m.name for m in discovered.catalogs[-1].models] == ["org/alpha-7b"]


@pytest.mark.cluster
def test_scaling_changes_endpoints_and_deleting_removes_the_model(
    kube: client.ApiClient, operator: Any, namespace: str, discovered: RunningSource
) -> None:
    core = client.CoreV1Api(kube)
    free_gpus(core, 3)
    _create(kube, namespace, model_deployment("beta", "beta", 1))
    first = _wait_endpoints(discovered, core, namespace, "beta", "beta", 1)
    model = discovered.model("beta")
    assert model is not None
    assert model.access == frozenset()
    assert model.routing == "prefix-affinity"

    _scale(kube, namespace, "beta", 3)
    grown = _wait_endpoints(discovered, core, namespace, "beta", "beta", 3)
    assert set(first) < set(grown)

    _scale(kube, namespace, "beta", 1)
    _wait_endpoints(discovered, core, namespace, "beta", "beta", 1)

    client.CustomObjectsApi(kube).delete_namespaced_custom_object(
        "modelplex.dev", "v1alpha1", namespace, "modeldeployments", "beta"
    )
    eventually(
        lambda: discovered.catalogs and discovered.model("beta") is None,
        timeout=30,
        what="the deleted ModelDeployment's model to leave the catalog",
    )


def _set_ready(core: client.CoreV1Api, namespace: str, pod: str, ready: bool) -> None:
    condition = {"type": "Ready", "status": "True" if ready else "False", "reason": "Test"}
    core.patch_namespaced_pod_status(pod, namespace, {"status": {"conditions": [condition]}})


@pytest.mark.cluster
def test_a_pod_that_is_not_ready_is_not_routable(
    kube: client.ApiClient, operator: Any, namespace: str, discovered: RunningSource
) -> None:
    core = client.CoreV1Api(kube)
    free_gpus(core, 2)
    _create(kube, namespace, model_deployment("gamma", "gamma", 2))
    endpoints = _wait_endpoints(discovered, core, namespace, "gamma", "gamma", 2)
    sick, healthy = sorted(endpoints)

    _set_ready(core, namespace, sick, ready=False)

    def sick_is_unready() -> list[EndpointSpec] | None:
        model = discovered.model("gamma")
        listed = list(model.endpoints) if model else []
        ready = {e.name for e in listed if e.ready}
        return listed if ready == {healthy} else None

    listed = eventually(sick_is_unready, timeout=30, what=f"{sick} to stop being routable")
    assert [e.name for e in listed if not e.ready] == [sick]  # listed, but never routed to

    _set_ready(core, namespace, sick, ready=True)
    eventually(
        lambda: _endpoints(discovered.model("gamma")) == endpoints,
        timeout=30,
        what=f"{sick} to be routable again",
    )


@pytest.mark.cluster
def test_the_gateway_identity_reads_only_what_discovery_needs(gateway_kubeconfig: Path) -> None:
    api = config.new_client_from_config(config_file=str(gateway_kubeconfig))  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(client.ApiException) as denied:
            client.CoreV1Api(api).list_pod_for_all_namespaces()
        assert denied.value.status == 403
        slices = client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces()
        assert slices.items is not None
    finally:
        api.close()


@pytest.mark.cluster
def test_gateway_run_lists_discovered_models_per_tenant(
    kube: client.ApiClient, operator: Any, namespace: str, gateway_kubeconfig: Path, tmp_path: Path
) -> None:
    """`modelplex gateway run --discovery kubernetes`, every namespace, under deploy/gateway/rbac.yaml."""
    free_gpus(client.CoreV1Api(kube), 1)
    _create(kube, namespace, model_deployment("delta", f"delta-{namespace}", 1, access={"tenants": ["acme"]}))
    tenants = [{"name": "acme", "keys": ["mpx-acme"]}, {"name": "globex", "keys": ["mpx-globex"]}]
    (tmp_path / "tenants.json").write_text(json.dumps({"tenants": tenants}))
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    command = [MODELPLEX, "gateway", "run", "--port", str(port), "--discovery", "kubernetes"]
    command += ["--kubeconfig", str(gateway_kubeconfig), "--config", str(tmp_path / "tenants.json")]
    env = {"MODELPLEX_GATEWAY_JOURNAL_DIR": str(tmp_path / "journal"), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1/models"

        def listed(key: str) -> list[str]:
            body = httpx.get(url, headers={"authorization": f"Bearer {key}"}).json()
            return [m["id"] for m in body["data"]]

        eventually(lambda: f"delta-{namespace}" in listed("mpx-acme"), timeout=30, what="acme to see delta")
        assert f"delta-{namespace}" not in listed("mpx-globex")
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert "Published catalog" in output, output
    assert "Failed to watch" not in output, output


def _md(namespace: str, name: str, created: str, **extra: Any) -> dict[str, Any]:
    metadata = {"namespace": namespace, "name": name, "creationTimestamp": created}
    return {"metadata": metadata | extra.pop("metadata", {}), "spec": {"model": {}, **extra}}


def _slice(namespace: str, service: str, family: str, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    metadata = {"namespace": namespace, "name": f"{service}-{family}", "labels": {}}
    metadata["labels"] = {"kubernetes.io/service-name": service}
    ports = [{"name": "http", "port": 8000}]
    return {"metadata": metadata, "addressType": family, "ports": ports, "endpoints": endpoints}


def test_catalog_rules_duplicates_deletion_routing_and_dual_stack() -> None:
    deployments = [
        _md("b", "m", "2024-01-02T00:00:00Z"),
        _md("a", "m", "2024-01-01T00:00:00Z", metadata={"annotations": {ROUTING_ANNOTATION: "bogus"}}),
        _md("c", "gone", "2024-01-01T00:00:00Z", metadata={"deletionTimestamp": "2024-02-01T00:00:00Z"}),
    ]
    pod = {"targetRef": {"name": "m-0"}, "conditions": {"ready": False}}
    slices = [
        _slice("a", "m", "IPv6", [pod | {"addresses": ["fd00::1"], "conditions": {"ready": True}}]),
        _slice("a", "m", "IPv4", [pod | {"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]),
    ]
    built = build_catalog(deployments, slices)
    (model,) = built.catalog.models
    assert (model.name, model.deployment, model.routing) == ("m", "a/m", "prefix-affinity")
    assert [(e.name, e.url, e.ready) for e in model.endpoints] == [
        ("10.0.0.2:8000", "http://10.0.0.2:8000", True),
        ("m-0", "http://[fd00::1]:8000", True),
    ]
    assert len(built.problems) == 2
    assert "b/m skipped" in " ".join(built.problems)


def test_gateway_run_refuses_models_in_the_file_with_kubernetes_discovery(tmp_path: Path) -> None:
    file = tmp_path / "gateway.json"
    file.write_text(json.dumps({"models": [{"name": "x", "endpoints": [{"url": "http://127.0.0.1:1"}]}]}))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    command = [MODELPLEX, "gateway", "run", "--discovery", "kubernetes", "--config", str(file)]
    result = subprocess.run(
        [*command, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "ModelDeployments" in result.stderr


@pytest.mark.cluster
def test_discovery_retries_until_it_is_allowed_to_watch(
    kube: client.ApiClient, dev_cluster: Any, gateway_kubeconfig: Path, namespace: str
) -> None:
    """An identity without the role logs and backs off; once bound, the catalog arrives."""
    user = f"late-gateway-{namespace}"
    running = RunningSource(KubernetesSource(load_credentials(dev_cluster.user_kubeconfig(user)), namespace))
    rbac = client.RbacAuthorizationV1Api(kube)
    running.start()
    try:
        time.sleep(1.5)
        assert running.catalogs == []
        subject = client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")
        role = client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="modelplex-gateway"
        )
        binding = client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="late-gateway"), role_ref=role, subjects=[subject]
        )
        rbac.create_namespaced_role_binding(namespace, binding)
        eventually(lambda: running.catalogs, timeout=30, what="a catalog once the role is bound")
        assert running.catalogs[-1].models == ()
    finally:
        running.stop()
