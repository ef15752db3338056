"""The operator keeps working when its token is revoked and its exec plugin hands out another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelplex.devcluster.cluster import DevCluster
from mpxtest.operatorproc import OperatorProcess
from mpxtest.tokens import ExecPlugin, ServiceAccountTokens, cluster_ca
from mpxtest.wait import eventually


def _model(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"source": "hf://org/model"}, "replicas": 0},
    }


@pytest.mark.cluster
def test_a_revoked_token_is_replaced_from_the_exec_plugin(
    kit: Any,
    operator_kubeconfig: Path,
    dev_cluster: DevCluster,
    kube: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    tokens = ServiceAccountTokens(kube, "modelplex-system", "modelplex-operator")
    plugin = ExecPlugin(tmp_path / "plugin", dev_cluster.server, cluster_ca(dev_cluster.kubeconfig))
    first = tokens.issue()
    plugin.hand_out(first)
    operator = OperatorProcess(plugin.kubeconfig, tmp_path / "operator.log")
    operator.start()
    try:
        kit.create(_model("before"), namespace)
        eventually(lambda: kit.condition(namespace, "before"), what="status on the first ModelDeployment")
        assert plugin.calls == 1

        plugin.hand_out(tokens.issue())
        tokens.revoke(first)
        kit.create(_model("after"), namespace)

        eventually(
            lambda: kit.apps.read_namespaced_deployment("after", namespace),
            what="the Deployment of a ModelDeployment created after the token was revoked",
        )
        eventually(lambda: kit.condition(namespace, "after"), what="status written with the new token")
        assert plugin.calls == 2
        assert "Failed to reconcile" not in operator.logs()  # renewed inside the request, not by a retry
    finally:
        operator.stop()
        tokens.cleanup()
