"""The autoscaler on Kubernetes: every interval, each ModelDeployment with spec.scaling is read,
decided and, when the decision differs from spec.replicas, scaled through the scale subresource.

Inputs come from the operator's own watched view (the Store: spec, workload status, pods with their
addresses) plus the series of two kinds of target: each ready serving pod's /metrics, and each ready
gateway endpoint's /metrics (the EndpointSlices of the gateway Service, watched here), scraped or
read from Prometheus (`source.py`). Outputs: spec.replicas (its own
field manager), an Event per change, and a `ScalingView` per model that the controller puts into
the status; a change of view queues the model for a reconcile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from modelplex.crds.resource import ModelDeployment
from modelplex.kube.client import KubeClient
from modelplex.kube.endpointslices import SERVICE_NAME_LABEL, slice_endpoints
from modelplex.kube.errors import ApiError
from modelplex.kube.resources import collection_path
from modelplex.kube.watch import WatchedCollection
from modelplex.operator.apply import Applier, now_rfc3339
from modelplex.operator.autoscaler.metrics import AutoscalerMetrics
from modelplex.operator.autoscaler.policy import Decision, Fleet, Signals, decide
from modelplex.operator.autoscaler.record import ModelRecord, ScalingView, event_message, scaling_report
from modelplex.operator.autoscaler.settings import AutoscalerSettings
from modelplex.operator.autoscaler.signals import read_pages
from modelplex.operator.autoscaler.source import signal_source
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.status import PodState, Transition, counts
from modelplex.operator.store import Key, Store

log = logging.getLogger(__name__)


class GatewayEndpoints:
    """The ready endpoints of the gateway Service, kept current by a watch of its EndpointSlices."""

    def __init__(self, client: KubeClient, service: str, port_name: str) -> None:
        namespace, _, name = service.partition("/")
        self._port_name = port_name
        self.collection = WatchedCollection(
            client,
            collection_path("discovery.k8s.io/v1", "EndpointSlice", namespace),
            lambda: None,
            label_selector=f"{SERVICE_NAME_LABEL}={name}",
        )

    def urls(self) -> list[str]:
        found = (
            e for body in self.collection.objects.values() for e in slice_endpoints(body, self._port_name)
        )
        return sorted({e.url for e in found if e.ready})


class Autoscaler:
    def __init__(
        self,
        settings: OperatorSettings,
        scaling: AutoscalerSettings,
        store: Store,
        applier: Applier,
        gateways: GatewayEndpoints | None,
        on_view_change: Callable[[Key], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.scaling = scaling
        self.store = store
        self.applier = applier
        self.gateways = gateways
        self.on_view_change = on_view_change
        self.clock = clock
        self.records: dict[Key, ModelRecord] = {}
        secret = settings.gateway_metrics_token
        self.source = signal_source(scaling, secret.get_secret_value() if secret is not None else None)
        self.metrics = AutoscalerMetrics()
        self.policy = scaling.policy()

    def view(self, key: Key) -> ScalingView | None:
        record = self.records.get(key)
        return record.view() if record else None

    def reports(self) -> list[dict[str, Any]]:
        """What the capacity report carries to the ledger: each scaled ModelDeployment's last reading
        and decisions."""
        return [found for key, record in self.records.items() if (found := scaling_report(*key, record))]

    async def run(self) -> None:
        """Until cancelled."""
        watching = asyncio.create_task(self.gateways.collection.run()) if self.gateways else None
        try:
            while True:
                started = self.clock()
                await self.step_all()
                await asyncio.sleep(max(0.0, self.scaling.interval_seconds - (self.clock() - started)))
        finally:
            if watching:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
            await self.source.close()

    async def step_all(self) -> None:
        keys = self.store.deployment_keys()
        scaled = [(key, md) for key in keys if (md := self._scaled(key)) is not None]
        for gone in set(self.records) - {key for key, _ in scaled}:
            record = self.records.pop(gone)
            if record.model is not None:
                self.metrics.forget(_deployment(gone), record.model)
        await asyncio.gather(*(self.step(key, md) for key, md in scaled))

    def _scaled(self, key: Key) -> ModelDeployment | None:
        body = self.store.deployment(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        if not (body.get("spec") or {}).get("scaling"):
            return None  # most ModelDeployments: no need to validate the whole body every interval
        try:
            md = ModelDeployment.from_body(body)
        except ValidationError:
            return None  # the controller says what is wrong with it
        return md if md.spec.scaling is not None else None

    async def step(self, key: Key, md: ModelDeployment) -> None:
        record = self.records.setdefault(key, ModelRecord())
        before_view = record.view()
        pods = self.store.pods_of(key)
        fleet = self._fleet(key, md, pods)
        signals = await self._signals(md, pods, record)
        assert md.spec.scaling is not None
        decision = decide(md.spec.scaling, fleet, signals, record.history, self.clock(), self.policy)
        record.read(decision, signals, md.served_name, now_rfc3339())
        labels = (_deployment(key), md.served_name)
        if decision.able:
            self.metrics.desired.labels(*labels).set(decision.replicas)
        else:
            self.metrics.unreadable.labels(*labels).inc()
        if decision.able and decision.replicas != md.spec.replicas:
            await self._scale(key, md, record, decision, signals)
        if record.view() != before_view:
            self.on_view_change(key)

    def _fleet(self, key: Key, md: ModelDeployment, pods: tuple[PodState, ...]) -> Fleet:
        seen = counts(self.store.workload_of(key))
        pending = sum(1 for pod in pods if pod.serving and pod.unschedulable)
        return Fleet(replicas=md.spec.replicas, ready=seen.ready, unschedulable=pending)

    async def _signals(self, md: ModelDeployment, pods: tuple[PodState, ...], record: ModelRecord) -> Signals:
        port = self.settings.engine_metrics_port
        engines = [f"http://{pod.ip}:{port}/metrics" for pod in pods if pod.serving and pod.ready and pod.ip]
        gateways = [f"{url}/metrics" for url in self.gateways.urls()] if self.gateways else []
        pages = await self.source.pages(engines, gateways)
        reading = read_pages(pages, engines, gateways, md.served_name, record.answered)
        record.answered = reading.answered
        return reading.signals

    async def _scale(
        self, key: Key, md: ModelDeployment, record: ModelRecord, decision: Decision, signals: Signals
    ) -> None:
        before = md.spec.replicas
        manual = record.written is not None and before != record.written
        try:
            await self.applier.scale(md.metadata, decision.replicas, self.settings.autoscaler_field_manager)
        except ApiError as error:
            record.write_error = f"failed to write spec.replicas: {error.message or error.reason}"
            log.warning("Failed to scale ModelDeployment namespace=%s name=%s error=%s", *key, error)
            return
        record.scaled(decision, before, signals, now_rfc3339())
        self.metrics.decisions.labels(_deployment(key), md.served_name, decision.reason).inc()
        log.info(
            "Scaled ModelDeployment namespace=%s name=%s from=%d to=%d reason=%s",
            *key,
            before,
            decision.replicas,
            decision.reason,
        )
        if manual:
            message = f"Overrode a manual scale to {before}: spec.scaling manages replicas"
            await self.applier.event(md.metadata, Transition("Warning", "OverrodeManualScale", message))
        message = event_message(before, decision.replicas, decision)
        await self.applier.event(md.metadata, Transition("Normal", decision.reason, message))


def _deployment(key: Key) -> str:
    return f"{key[0]}/{key[1]}"
