"""Runs the operator: kopf's watch streams feeding the controller's reconcile workers."""

from __future__ import annotations

import asyncio
import logging
import threading

import kopf

from modelplex.kube.client import KubeClient
from modelplex.kube.credentials import KubeCredentials
from modelplex.operator.apply import Applier
from modelplex.operator.autoscaler.loop import Autoscaler, GatewayEndpoints
from modelplex.operator.autoscaler.settings import AutoscalerSettings
from modelplex.operator.capacity import CapacityReporter
from modelplex.operator.controller import Controller
from modelplex.operator.handlers import build_registry
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.store import Store

log = logging.getLogger(__name__)


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    configured = kopf.OperatorSettings()
    configured.posting.enabled = False  # Events are posted by the apply module, about transitions only
    configured.scanning.disabled = True  # no list/watch of CRDs and namespaces: fewer RBAC verbs
    # kopf's per-object worker keeps the object's last body while it idles; the default 5 s held
    # about a thousand bodies during a burst of creations at 1000 ModelDeployments.
    configured.queueing.idle_timeout = settings.event_worker_idle_seconds
    configured.watching.server_timeout = 300
    configured.watching.client_timeout = 330
    configured.networking.request_timeout = settings.request_timeout_seconds
    return configured


async def run_operator(
    settings: OperatorSettings,
    credentials: KubeCredentials,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Until `stop_flag` is set or the process is signalled."""
    api = KubeClient(credentials, settings.request_timeout_seconds)
    controller = Controller(settings, Store(), Applier(api, settings.field_manager))
    reporter = _capacity_reporter(settings, api, controller)
    registry = build_registry(
        controller, credentials, on_pod_change=reporter.poke if reporter else lambda: None
    )
    tasks = [asyncio.create_task(controller.run(), name="reconcile")]
    if reporter is not None:
        reporter.every_deployment = controller.store.deployments
        tasks.append(asyncio.create_task(reporter.run(), name="capacity"))
    scaling = AutoscalerSettings()
    if scaling.enabled:
        autoscaler = _autoscaler(settings, scaling, controller, api)
        controller.scaling_view = autoscaler.view
        if reporter is not None:
            reporter.scaling = autoscaler.reports
        if settings.metrics_bind:
            autoscaler.metrics.serve(settings.metrics_bind)
        tasks.append(asyncio.create_task(autoscaler.run(), name="autoscaler"))
    log.info(
        "Started operator server=%s namespaces=%s workers=%d",
        credentials.server,
        ",".join(settings.namespaces) or "*",
        settings.workers,
    )
    try:
        await kopf.operator(
            registry=registry,
            settings=kopf_settings(settings),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            liveness_endpoint=settings.liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await api.close()
        log.info("Stopped operator server=%s", credentials.server)


def _capacity_reporter(
    settings: OperatorSettings, api: KubeClient, controller: Controller
) -> CapacityReporter | None:
    if settings.ledger_url is None:
        return None
    token = settings.ledger_admin_token
    return CapacityReporter(
        api,
        settings.ledger_url,
        None if token is None else token.get_secret_value(),
        controller.store.deployment,
        controller.store.gpu_nodes,
        settings.namespaces,
        settings.capacity_report_seconds,
    )


def _autoscaler(
    settings: OperatorSettings, scaling: AutoscalerSettings, controller: Controller, api: KubeClient
) -> Autoscaler:
    gateways = None
    if settings.gateway_service:
        gateways = GatewayEndpoints(api, settings.gateway_service, settings.gateway_metrics_port_name)
    return Autoscaler(settings, scaling, controller.store, controller.applier, gateways, controller.queue.add)
