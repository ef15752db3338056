"""The gateway's Kubernetes client follows rotated service-account tokens and renews exec-plugin ones."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from modelplex.devcluster.cluster import DevCluster
from modelplex.kube.client import KubeClient
from modelplex.kube.credentials import KubeCredentials, in_cluster_credentials, kubeconfig_credentials
from modelplex.kube.errors import ApiError
from mpxtest.tokens import ExecPlugin, ServiceAccountTokens, cluster_ca

GATEWAY = ("modelplex-system", "modelplex-gateway")


def _models_path(namespace: str) -> str:
    return f"/apis/modelplex.dev/v1alpha1/namespaces/{namespace}/modeldeployments"


@pytest.fixture
def tokens(kube: client.ApiClient, gateway_kubeconfig: Path) -> Iterator[ServiceAccountTokens]:
    issued = ServiceAccountTokens(kube, *GATEWAY)
    try:
        yield issued
    finally:
        issued.cleanup()


def _run(credentials: KubeCredentials, steps: Callable[[KubeClient], Awaitable[None]]) -> None:
    async def scenario() -> None:
        kube = KubeClient(credentials)
        try:
            await steps(kube)
        finally:
            await kube.close()

    asyncio.run(scenario())


@pytest.mark.cluster
def test_in_cluster_token_file_is_read_at_every_request(
    tokens: ServiceAccountTokens, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    shutil.copy(cluster_ca(dev_cluster.kubeconfig), tmp_path / "ca.crt")
    first = tokens.issue()
    (tmp_path / "token").write_text(first)

    async def steps(kube: KubeClient) -> None:
        assert (await kube.get(_models_path(namespace), {}))["items"] == []
        (tmp_path / "token").write_text(tokens.issue())  # what the kubelet does, in place
        tokens.revoke(first)
        assert (await kube.get(_models_path(namespace), {}))["items"] == []

    _run(in_cluster_credentials(tmp_path, server=dev_cluster.server), steps)


@pytest.mark.cluster
def test_exec_plugin_runs_again_after_a_401(
    tokens: ServiceAccountTokens, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    plugin = ExecPlugin(tmp_path, dev_cluster.server, cluster_ca(dev_cluster.kubeconfig))
    first = tokens.issue()
    plugin.hand_out(first)

    async def steps(kube: KubeClient) -> None:
        await kube.get(_models_path(namespace), {})
        second = tokens.issue()
        plugin.hand_out(second)
        tokens.revoke(first)
        # Refused with the revoked token: renewed, and sent again within the same request.
        assert (await kube.get(_models_path(namespace), {}))["items"] == []
        assert plugin.calls == 2
        tokens.revoke(second)  # the plugin hands it out again: refused once more, then given up
        with pytest.raises(ApiError) as refused:  # discovery backs off and retries after this
            await kube.get(_models_path(namespace), {})
        assert (refused.value.status, refused.value.reason) == (401, "Unauthorized")

    _run(kubeconfig_credentials(plugin.kubeconfig), steps)
    assert plugin.calls == 3  # one renewal per refused request, never a loop
