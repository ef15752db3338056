"""A real Kubernetes control plane on 127.0.0.1 with fake GPU nodes and the LeaderWorkerSet controller.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as the real binaries with TLS
and RBAC; kwok plays the kubelets of fake GPU nodes (keeps them Ready, marks scheduled pods
Running); the LWS controller serves its admission webhooks on loopback with a certificate from the
cluster's CA, registered by URL.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from modelplex import processes
from modelplex.devcluster.binaries import Binaries
from modelplex.devcluster.blocking import BlockingClient
from modelplex.devcluster.config import DevClusterSettings
from modelplex.devcluster.kubeconfig import Credentials, write_kubeconfig
from modelplex.devcluster.nodes import gpu_nodes, node_names
from modelplex.devcluster.pki import CertificateAuthority, client_tls, write_service_account_keys
from modelplex.kube.resources import collection_path, resource_path
from modelplex.processes import Component, free_port, wait_until

log = logging.getLogger(__name__)

ADMIN_USER = "modelplex-admin"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
LWS_NAMESPACE = "lws-system"


@dataclass
class DevCluster:
    """Handle on a running cluster: its folder, admin kubeconfig and processes."""

    workdir: Path
    kubeconfig: Path
    server: str
    components: list[Component] = field(default_factory=list)
    started_in_seconds: float = 0.0

    def stop(self, remove_workdir: bool = True) -> None:
        processes.stop(self.components)
        if remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        log.info("Stopped dev cluster workdir=%s", self.workdir)

    def __enter__(self) -> DevCluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def restart(self, name: str, down_seconds: float = 0.0) -> None:
        """Stop component `name` (SIGTERM, then SIGKILL), keep it down `down_seconds`, and start it
        again as it was started (same flags, same ports); the kube-apiserver is waited for until
        ready. For a cluster started by this process (one loaded from a state file lacks the flags)."""
        index, old = next((i, c) for i, c in enumerate(self.components) if c.name == name)
        if not old.argv:
            raise RuntimeError(f"{name} was not started by this process; its flags are unknown")
        processes.stop([old])
        time.sleep(down_seconds)
        new = processes.start(name, old.argv, old.log.parent, env=old.env)
        self.components[index] = new
        if name == "kube-apiserver":
            with BlockingClient(self.kubeconfig, timeout_seconds=3) as client:
                wait_until("kube-apiserver /readyz", lambda: client.ok("/readyz"), 60, [new])
        log.info("Restarted dev cluster component=%s down_s=%.1f", name, down_seconds)

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig authenticating as `user` (in `groups`), with only what RBAC grants them.

        Tests run components as the identity they have in production, e.g. the operator bound
        to its ClusterRole rather than as cluster-admin.
        """
        ca = CertificateAuthority(self.workdir / "pki")
        stem = "user-" + "".join(ch if ch.isalnum() else "-" for ch in user)
        pair = ca.issue(stem, user, groups, client=True)
        credentials = Credentials(self.server, ca.pair.cert, pair.cert, pair.key)
        return write_kubeconfig(self.workdir / f"{stem}.kubeconfig", credentials, user)

    def to_state(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "components": [{"name": c.name, "pid": c.pid, "log": str(c.log)} for c in self.components],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DevCluster:
        components = [Component(c["name"], c["pid"], Path(c["log"])) for c in state["components"]]
        return cls(Path(state["workdir"]), Path(state["kubeconfig"]), state["server"], components)


class _Starter:
    """Brings the components up in order; on any failure the caller stops what was started."""

    def __init__(self, binaries: Binaries, settings: DevClusterSettings, workdir: Path, tied: bool) -> None:
        self.bin = binaries
        self.settings = settings
        self.dir = workdir
        self.tied = tied
        self.pki = CertificateAuthority(workdir / "pki")
        self.logs = workdir / "logs"
        self.logs.mkdir()
        self.components: list[Component] = []
        self.timeout = settings.start_timeout_seconds

    def _start(self, name: str, argv: list[str]) -> Component:
        component = processes.start(name, argv, self.logs, tied_to_parent=self.tied)
        self.components.append(component)
        return component

    def _credentials(self, server: str, stem: str, user: str, groups: tuple[str, ...] = ()) -> Credentials:
        pair = self.pki.issue(stem, user, groups, client=True)
        return Credentials(server, self.pki.pair.cert, pair.cert, pair.key)

    def etcd(self) -> str:
        client, peer = free_port(), free_port()
        serving = self.pki.issue("etcd", "etcd", server=True, client=True)
        url = f"https://127.0.0.1:{client}"
        etcd = self._start(
            "etcd",
            [
                str(self.bin["etcd"]),
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--listen-metrics-urls=",
                f"--cert-file={serving.cert}",
                f"--key-file={serving.key}",
                f"--trusted-ca-file={self.pki.pair.cert}",
                "--client-cert-auth=true",
                "--unsafe-no-fsync=true",  # a throw-away test store; fsync only costs time here
                "--log-level=warn",
            ],
        )
        with httpx.Client(verify=client_tls(self.pki.pair.cert, serving), timeout=2) as health_client:
            wait_until(
                "etcd /health",
                lambda: health_client.get(f"{url}/health").status_code == 200,
                self.timeout,
                [etcd],
            )
        return url

    def apiserver(self, etcd_url: str) -> tuple[str, Path]:
        """Starts kube-apiserver; its URL and the admin kubeconfig once it is ready."""
        port = free_port()
        server = f"https://127.0.0.1:{port}"
        serving = self.pki.issue("apiserver", "kube-apiserver", server=True)
        etcd_client = self.pki.issue("apiserver-etcd", "kube-apiserver-etcd-client", client=True)
        sa = write_service_account_keys(self.pki.directory)
        apiserver = self._start(
            "kube-apiserver",
            [
                str(self.bin["kube-apiserver"]),
                f"--etcd-servers={etcd_url}",
                f"--etcd-cafile={self.pki.pair.cert}",
                f"--etcd-certfile={etcd_client.cert}",
                f"--etcd-keyfile={etcd_client.key}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.dir / 'apiserver-certs'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={self.pki.pair.cert}",
                "--authorization-mode=Node,RBAC",
                "--anonymous-auth=false",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--endpoint-reconciler-type=none",  # a loopback address cannot be an Endpoints entry
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        )
        admin = self._credentials(server, "admin", ADMIN_USER, ("system:masters",))
        kubeconfig = write_kubeconfig(self.dir / "admin.kubeconfig", admin, ADMIN_USER)
        with BlockingClient(kubeconfig, timeout_seconds=3) as client:
            wait_until("kube-apiserver /readyz", lambda: client.ok("/readyz"), self.timeout, [apiserver])
        return server, kubeconfig

    def kubeconfig_for(self, server: str, stem: str, user: str) -> Path:
        return write_kubeconfig(self.dir / f"{stem}.kubeconfig", self._credentials(server, stem, user), user)

    def _component_flags(self, stem: str, kubeconfig: Path) -> list[str]:
        """Flags controller-manager and scheduler share: identity, loopback serving, no election."""
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={self.dir / f'{stem}-certs'}",
            "--leader-elect=false",
        ]

    def controller_manager(self, server: str) -> None:
        kubeconfig = self.kubeconfig_for(server, "controller-manager", "system:kube-controller-manager")
        self._start(
            "kube-controller-manager",
            [
                str(self.bin["kube-controller-manager"]),
                *self._component_flags("controller-manager", kubeconfig),
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.pki.directory / 'sa.key'}",
                f"--root-ca-file={self.pki.pair.cert}",
                f"--cluster-signing-cert-file={self.pki.pair.cert}",
                f"--cluster-signing-key-file={self.pki.pair.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--v=1",
            ],
        )

    def scheduler(self, server: str) -> None:
        kubeconfig = self.kubeconfig_for(server, "scheduler", "system:kube-scheduler")
        self._start(
            "kube-scheduler",
            [
                str(self.bin["kube-scheduler"]),
                *self._component_flags("scheduler", kubeconfig),
                "--v=1",
            ],
        )

    def kwok(self, admin_kubeconfig: Path) -> None:
        serving = self.pki.issue("kwok", "kwok", server=True)
        args = [
            str(self.bin["kwok"]),
            f"--kubeconfig={admin_kubeconfig}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            f"--node-port={free_port()}",
            f"--server-address=127.0.0.1:{free_port()}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            "--node-lease-duration-seconds=40",
        ]
        for stage in self.bin.kwok_stages:
            args.append(f"--config={stage}")
        self._start("kwok", args)

    def gpu_nodes(self, client: BlockingClient) -> None:
        for node in gpu_nodes(self.settings.nodes):
            client.apply(node)

    def wait_nodes_ready(self, client: BlockingClient) -> None:
        names = set(node_names(self.settings.nodes))

        def ready() -> bool:
            items = client.get(collection_path("v1", "Node"))["items"]
            ready_names = {
                n["metadata"]["name"]
                for n in items
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])
                )
            }
            return names <= ready_names

        wait_until(f"{len(names)} GPU nodes Ready", ready, self.timeout, self.components)

    def wait_default_service_account(self, client: BlockingClient) -> None:
        wait_until(
            "the default ServiceAccount (kube-controller-manager)",
            lambda: client.ok(resource_path("v1", "ServiceAccount", "default", "default")),
            self.timeout,
            self.components,
        )

    def lws(self, client: BlockingClient, admin_kubeconfig: Path) -> None:
        for crd_file in self.bin.lws_crds:
            client.apply(yaml.safe_load(crd_file.read_text()))
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LWS_NAMESPACE}})
        cert_dir = self.dir / "lws-webhook-certs"
        cert_dir.mkdir()
        serving = self.pki.issue("lws-webhook", "lws-webhook", server=True)
        shutil.copy(serving.cert, cert_dir / "tls.crt")
        shutil.copy(serving.key, cert_dir / "tls.key")
        webhook_port, health_port = free_port(), free_port()
        config = self.dir / "lws-config.yaml"
        config.write_text(yaml.safe_dump(_lws_configuration(cert_dir, webhook_port, health_port)))
        lws = self._start(
            "lws-controller",
            [str(self.bin["lws-controller"]), f"--config={config}", f"--kubeconfig={admin_kubeconfig}"],
        )
        with httpx.Client(timeout=2) as probe:
            wait_until(
                "the LWS controller /readyz",
                lambda: probe.get(f"http://127.0.0.1:{health_port}/readyz").status_code == 200,
                self.timeout,
                [lws],
            )
        for webhook_config in _lws_webhooks(f"https://127.0.0.1:{webhook_port}", self.pki.pem):
            client.apply(webhook_config)
        wait_until(
            "the LeaderWorkerSet CRD to be served",
            lambda: client.ok(collection_path("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")),
            self.timeout,
            [lws],
        )


def _lws_configuration(cert_dir: Path, webhook_port: int, health_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "config.lws.x-k8s.io/v1alpha1",
        "kind": "Configuration",
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "metrics": {"bindAddress": "0"},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
    }


def _webhook(
    name: str,
    url: str,
    ca_bundle: str,
    group: str,
    resource: str,
    operations: list[str],
    lws_pods_only: bool = False,
) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "clientConfig": {"url": url, "caBundle": ca_bundle},
        "rules": [
            {"apiGroups": [group], "apiVersions": ["v1"], "operations": operations, "resources": [resource]}
        ],
    }
    if lws_pods_only:
        hook["objectSelector"] = {
            "matchExpressions": [{"key": "leaderworkerset.sigs.k8s.io/name", "operator": "Exists"}]
        }
    return hook


def _lws_webhooks(base_url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """The LWS controller's webhook registrations, pointed at its loopback address by URL."""
    import base64

    ca = base64.b64encode(ca_pem).decode()
    lws_group, write = "leaderworkerset.x-k8s.io", ["CREATE", "UPDATE"]
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "lws-mutating-webhook-configuration"},
            "webhooks": [
                _webhook(
                    "mleaderworkerset.kb.io",
                    f"{base_url}/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
                    ca,
                    lws_group,
                    "leaderworkersets",
                    write,
                ),
                _webhook(
                    "mpod.kb.io", f"{base_url}/mutate--v1-pod", ca, "", "pods", ["CREATE"], lws_pods_only=True
                ),
            ],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "lws-validating-webhook-configuration"},
            "webhooks": [
                _webhook(
                    "vleaderworkerset.kb.io",
                    f"{base_url}/validate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
                    ca,
                    lws_group,
                    "leaderworkersets",
                    write,
                ),
                _webhook(
                    "vpod.kb.io", f"{base_url}/validate--v1-pod", ca, "", "pods", write, lws_pods_only=True
                ),
            ],
        },
    ]


def start_cluster(
    binaries: Binaries,
    settings: DevClusterSettings,
    *,
    workdir: Path | None = None,
    tied_to_parent: bool = True,
) -> DevCluster:
    """Start everything and wait until the GPU nodes are Ready; stop all of it if any step fails.

    With tied_to_parent (tests), the processes die with the calling process even on SIGKILL.
    """
    began = time.monotonic()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="modelplex-dev-cluster-"))
    starter = _Starter(binaries, settings, workdir, tied_to_parent)
    try:
        server, kubeconfig = starter.apiserver(starter.etcd())
        starter.controller_manager(server)
        starter.scheduler(server)
        starter.kwok(kubeconfig)
        with BlockingClient(kubeconfig) as client:
            starter.gpu_nodes(client)
            if settings.with_lws:
                starter.lws(client, kubeconfig)
            starter.wait_nodes_ready(client)
            starter.wait_default_service_account(client)
    except BaseException:
        processes.stop(starter.components)
        raise
    cluster = DevCluster(workdir, kubeconfig, server, starter.components, time.monotonic() - began)
    log.info("Started dev cluster server=%s seconds=%.1f", server, cluster.started_in_seconds)
    return cluster


def dump_state(cluster: DevCluster, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cluster.to_state(), indent=2))
