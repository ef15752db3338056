"""The autoscaler's Prometheus metrics, and the operator's /metrics listener that serves them."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class AutoscalerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.desired = Gauge(
            "modelplex_autoscaler_desired_replicas",
            "Replicas the autoscaler asks for.",
            ["deployment", "model"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "modelplex_autoscaler_decisions",
            "Changes of spec.replicas made by the autoscaler, by reason.",
            ["deployment", "model", "reason"],
            registry=self.registry,
        )
        self.unreadable = Counter(
            "modelplex_autoscaler_unreadable_signals",
            "Readings in which some engine or gateway could not be read (nothing was decided).",
            ["deployment", "model"],
            registry=self.registry,
        )

    def forget(self, deployment: str, model: str) -> None:
        for metric in (self.desired, self.unreadable):
            with contextlib.suppress(KeyError):
                metric.remove(deployment, model)

    def serve(self, bind: str) -> None:
        """Serves /metrics on `bind` ("host:port") from a thread of its own."""
        host, _, port = bind.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
