"""ModelDeployments at scale: time from create to children and to Ready=True, operator RSS and CPU.

    .venv/bin/python bench/operator_scale.py [--counts 200 1000] [--workers 8]

For each count it starts its own dev cluster (etcd, kube-apiserver, controller-manager, scheduler,
kwok) with enough fake GPU nodes for one GPU per ModelDeployment, installs the CRD and the
operator's RBAC, runs `modelplex operator run` as a subprocess under that role, creates the
ModelDeployments one after another (single GPU, one replica each) and watches Deployments and
ModelDeployments to time each one. Peak RSS is the kernel's VmHWM of the operator process; CPU
seconds are its user + system time. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client, config, watch
from kubernetes.dynamic import DynamicClient

from modelplex.crds.generate import CRD_PATH
from modelplex.devcluster.binaries import ensure_binaries
from modelplex.devcluster.cluster import DevCluster, start_cluster
from modelplex.devcluster.config import DevClusterSettings, GpuNodePool

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"
OPERATOR_USER = "system:serviceaccount:modelplex-system:modelplex-operator"


def _apply(dynamic: DynamicClient, manifest: dict[str, Any]) -> None:
    resource = dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    resource.server_side_apply(
        body=manifest,
        name=manifest["metadata"]["name"],
        namespace=manifest["metadata"].get("namespace"),
        field_manager="bench",
        force_conflicts=True,
    )


def _install(api: client.ApiClient) -> None:
    dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]
    _apply(dynamic, yaml.safe_load(CRD_PATH.read_text()))
    for name in ("rbac.yaml", "flowschema.yaml"):
        for manifest in yaml.safe_load_all((ROOT / "deploy" / "operator" / name).read_text()):
            _apply(dynamic, manifest)
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            dynamic.resources.get(api_version="modelplex.dev/v1alpha1", kind="ModelDeployment")
            client.CustomObjectsApi(api).list_namespaced_custom_object(
                "modelplex.dev", "v1alpha1", NAMESPACE, "modeldeployments"
            )
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("the ModelDeployment CRD was not served in 30 s")


class Clock:
    """First time each name was seen with children, and with Ready=True (watch threads)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.children: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.stop = threading.Event()

    def _watch_deployments(self) -> None:
        apps = client.AppsV1Api(self.api)
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        events = stream.stream(apps.list_namespaced_deployment, NAMESPACE, timeout_seconds=3600)  # type: ignore[no-untyped-call]
        for event in events:
            self.children.setdefault(event["object"].metadata.name, time.monotonic())
            if self.stop.is_set():
                stream.stop()  # type: ignore[no-untyped-call]

    def _watch_models(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        for event in stream.stream(  # type: ignore[no-untyped-call]
            custom.list_namespaced_custom_object,
            "modelplex.dev",
            "v1alpha1",
            NAMESPACE,
            "modeldeployments",
            timeout_seconds=3600,
        ):
            body = event["object"]
            conditions = (body.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                self.ready.setdefault(body["metadata"]["name"], time.monotonic())
            if self.stop.is_set():
                stream.stop()  # type: ignore[no-untyped-call]

    def _quietly(self, target: Any) -> None:
        try:
            target()
        except Exception:
            if not self.stop.is_set():
                raise

    def start(self) -> None:
        for target in (self._watch_deployments, self._watch_models):
            threading.Thread(target=self._quietly, args=(target,), daemon=True).start()


def _proc(pid: int) -> tuple[float, float]:
    """(peak RSS MiB, CPU seconds) of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak_kib / 1024, (int(fields[11]) + int(fields[12])) / ticks


def _md(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": f"model-{index:04d}"},
        "spec": {
            "model": {"source": f"hf://org/model-{index}", "parameterCount": 1_000_000_000},
            "resources": {"gpuMemory": "80Gi"},
        },
    }


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:.2f} s, p99 {cuts[98]:.2f} s, max {max(values):.2f} s"


def run(count: int, workers: int) -> dict[str, Any]:
    gpus_per_node = 64
    pool = GpuNodePool(count=-(-count // gpus_per_node), gpus_per_node=gpus_per_node)
    settings = DevClusterSettings(nodes=pool)
    cluster: DevCluster = start_cluster(ensure_binaries(settings.cache_dir), settings)
    operator: subprocess.Popen[bytes] | None = None
    try:
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig)
        )
        _install(api)
        log = Path(tempfile.mkdtemp(prefix="operator-bench-")) / "operator.log"
        command = [
            str(Path(sys.executable).with_name("modelplex")),
            "operator",
            "run",
            "--kubeconfig",
            str(cluster.user_kubeconfig(OPERATOR_USER)),
            "--workers",
            str(workers),
            "--log-level",
            "WARNING",
        ]
        with log.open("wb") as sink:
            operator = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        time.sleep(3)  # the operator's watch streams start
        clock = Clock(api)
        clock.start()
        custom = client.CustomObjectsApi(api)
        created: dict[str, float] = {}
        began = time.monotonic()
        for index in range(count):
            body = _md(index)
            custom.create_namespaced_custom_object(
                "modelplex.dev", "v1alpha1", NAMESPACE, "modeldeployments", body
            )
            created[body["metadata"]["name"]] = time.monotonic()
        create_seconds = time.monotonic() - began
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(clock.ready) < count:
            time.sleep(0.5)
        time.sleep(2)
        peak_mib, cpu_seconds = _proc(operator.pid)
        listed = cast(
            dict[str, Any],
            custom.list_namespaced_custom_object("modelplex.dev", "v1alpha1", NAMESPACE, "modeldeployments"),
        )
        ready_now = sum(
            any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (i.get("status") or {}).get("conditions", [])
            )
            for i in listed["items"]
        )
        clock.stop.set()
        return {
            "count": count,
            "nodes": pool.count,
            "create_seconds": create_seconds,
            "children": [clock.children[n] - t for n, t in created.items() if n in clock.children],
            "ready": [clock.ready[n] - t for n, t in created.items() if n in clock.ready],
            "peak_mib": peak_mib,
            "cpu_seconds": cpu_seconds,
            "log": str(log),
            "ready_now": ready_now,
        }
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(timeout=30)
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    for count in args.counts:
        result = run(count, args.workers)
        print(
            f"\n{count} ModelDeployments on {result['nodes']} nodes x 64 GPUs "
            f"(created in {result['create_seconds']:.1f} s, one at a time)"
        )
        print(f"  create -> children ({len(result['children'])}/{count}): {_percentiles(result['children'])}")
        print(f"  create -> Ready=True ({len(result['ready'])}/{count}): {_percentiles(result['ready'])}")
        print(f"  Ready=True when measured: {result['ready_now']}/{count}")
        print(f"  operator peak RSS {result['peak_mib']:.0f} MiB, CPU {result['cpu_seconds']:.1f} s")
        print(f"  operator log: {result['log']}")


if __name__ == "__main__":
    main()
