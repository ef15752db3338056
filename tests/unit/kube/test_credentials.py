"""Kubernetes credentials from kubeconfigs and service-account folders, and how tokens are renewed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from modelplex.kube.client import KubeClient
from modelplex.kube.credentials import (
    CredentialsError,
    KubeCredentials,
    authorization,
    in_cluster_credentials,
    kubeconfig_credentials,
)
from modelplex.operator.controller import Controller
from modelplex.operator.handlers import build_registry
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.store import Store
from mpxtest.tokens import ExecPlugin


def _kubeconfig(path: Path, user: dict[str, Any]) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_token_in_the_kubeconfig_is_sent(tmp_path: Path) -> None:
    credentials = kubeconfig_credentials(_kubeconfig(tmp_path / "config", {"token": "abc123"}))
    assert credentials.server == "https://127.0.0.1:6443"
    assert credentials.bearer() == "abc123"
    assert authorization(credentials.bearer()) == {"Authorization": "Bearer abc123"}
    assert authorization(None) == {}


def test_a_token_file_named_by_the_kubeconfig_is_read_again_on_renew(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    credentials = kubeconfig_credentials(_kubeconfig(tmp_path / "config", {"tokenFile": str(token_file)}))
    assert credentials.bearer() == "first"
    token_file.write_text("second")
    credentials.renew("first")
    assert credentials.bearer() == "second"


def test_requests_refused_together_run_the_exec_plugin_once(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("")  # read only when a connection is made
    plugin = ExecPlugin(tmp_path, "https://127.0.0.1:6443", tmp_path / "ca.crt")
    plugin.hand_out("first")
    credentials = kubeconfig_credentials(plugin.kubeconfig)
    assert credentials.bearer() == "first"
    plugin.hand_out("second")
    credentials.renew("first")
    credentials.renew("first")  # a second request that was refused with the same token
    assert credentials.bearer() == "second"
    assert plugin.calls == 2


def test_a_failed_renewal_keeps_the_token_it_had(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first")
    credentials = kubeconfig_credentials(_kubeconfig(tmp_path / "config", {"tokenFile": str(token_file)}))
    (tmp_path / "config").write_text("not: a kubeconfig")
    credentials.renew("first")
    assert credentials.bearer() == "first"


def test_the_service_account_token_is_read_at_every_use(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first")
    credentials = in_cluster_credentials(tmp_path)
    assert credentials.server == "https://kubernetes.default.svc"
    assert credentials.ca_path == str(tmp_path / "ca.crt")
    assert credentials.bearer() == "first"
    (tmp_path / "token").write_text("rotated\n")
    assert credentials.bearer() == "rotated"


def test_a_missing_or_broken_kubeconfig_is_named(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=str(tmp_path / "absent")):
        kubeconfig_credentials(tmp_path / "absent")
    (tmp_path / "broken").write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(CredentialsError, match=str(tmp_path / "broken")):
        kubeconfig_credentials(tmp_path / "broken")


class CountingTokens:
    def __init__(self) -> None:
        self.current = "first"
        self.renewed: list[str | None] = []

    def token(self) -> str | None:
        return self.current

    def renew(self, refused: str | None) -> None:
        self.renewed.append(refused)
        self.current = "second"


def test_kopf_logging_in_again_renews_the_token_it_had() -> None:
    tokens = CountingTokens()
    credentials = KubeCredentials("https://127.0.0.1:6443", tokens=tokens)
    controller = Controller(OperatorSettings(kubeconfig=None), Store(), applier=None)  # type: ignore[arg-type]
    registry = build_registry(controller, credentials)
    (login,) = [handler.fn for handler in registry._activities.get_all_handlers()]
    call: Any = login  # kopf types it with every keyword it would pass; the handler takes none

    async def twice() -> list[Any]:
        return [await call(), await call()]

    first, second = asyncio.run(twice())
    assert (first.token, second.token) == ("first", "second")
    assert tokens.renewed == ["first"]


def test_a_server_with_a_path_keeps_it_for_the_operator_and_the_gateway() -> None:
    # Clusters reached through a proxy (Rancher: https://host/k8s/clusters/<id>) have a path prefix.
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"items": [], "metadata": {}})

    async def scenario() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        credentials = KubeCredentials(f"http://127.0.0.1:{server.port}/k8s/clusters/c-1/")
        try:
            async with KubeClient(credentials, 5) as kube:
                await kube.patch_status("ns", "m", {})  # what the operator writes
                await kube.get("/api/v1/namespaces/ns/services", {})  # what the gateway lists
        finally:
            await server.close()

    asyncio.run(scenario())
    assert seen == [
        "/k8s/clusters/c-1/apis/modelplex.dev/v1alpha1/namespaces/ns/modeldeployments/m/status",
        "/k8s/clusters/c-1/api/v1/namespaces/ns/services",
    ]
