"""Prometheus metrics of one gateway. Labels carry ids and names only, never keys or prompt text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ANY_TENANT = "*"  # the tenant label's value when tenant ids are not to be published
NO_TENANT = "-"  # the tenant label of a request whose tenant is unknown (no valid key)
Metric = TypeVar("Metric", Counter, Histogram)


class TenantLabelled(Generic[Metric]):
    """A counter or histogram whose first label is the tenant: the tenant id, or ANY_TENANT for every
    tenant when ids stay private (anyone who can read /metrics would otherwise learn who the tenants
    are and how much each one uses). The label stays either way, so queries and dashboards work with
    both."""

    def __init__(self, metric: Metric, tenant_ids: bool) -> None:
        self._metric: Metric = metric
        self._tenant_ids = tenant_ids
        self._children: dict[tuple[str, ...], Metric] = {}  # prometheus_client's lookup checks and locks

    def labels(self, tenant: str, *others: str) -> Metric:
        shown = tenant if self._tenant_ids or tenant == NO_TENANT else ANY_TENANT
        key = (shown, *others)
        labelled = self._children.get(key)
        if labelled is None:
            labelled = self._children[key] = self._metric.labels(shown, *others)
        return labelled


class BudgetUse:
    """The share of each tenant's monthly budget used ("token", "spend"; 1.0 = all of it), as the
    ledger last read it for admission. With tenant ids private the one series, tenant="*", is the
    highest share of any tenant (worked out when /metrics is read): an alert on it still fires, and
    the ledger (`modelplex tenants`, the admin API) says which tenant it is. A new month starts empty."""

    def __init__(self, gauge: Gauge, tenant_ids: bool) -> None:
        self._gauge = gauge
        self._tenant_ids = tenant_ids
        self._month = ""
        self._shares: dict[str, dict[str, float]] = {}  # budget -> tenant -> share (ids private)

    def observe(self, tenant: str, month: str, shares: Mapping[str, float]) -> None:
        if month != self._month:
            self._month = month
            self._shares.clear()
            self._gauge.clear()
        for budget, share in shares.items():
            if self._tenant_ids:
                self._gauge.labels(tenant, budget).set(share)
                continue
            if budget not in self._shares:
                of_budget = self._shares[budget] = {}
                self._gauge.labels(ANY_TENANT, budget).set_function(partial(_highest, of_budget))
            self._shares[budget][tenant] = share


def _highest(shares: Mapping[str, float]) -> float:
    return max(shares.values(), default=0.0)


class GatewayMetrics:
    def __init__(self, tenant_ids: bool = False) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = TenantLabelled(
            Counter(
                "modelplex_gateway_requests", "Requests answered.", ["tenant", "model", "code"], registry=r
            ),
            tenant_ids,
        )
        self.tokens = TenantLabelled(
            Counter(
                "modelplex_gateway_tokens",
                "Tokens served (prompt, cached, completion).",
                ["tenant", "model", "type"],
                registry=r,
            ),
            tenant_ids,
        )
        self.duration = TenantLabelled(
            Histogram(
                "modelplex_gateway_request_duration_seconds",
                "Request duration.",
                ["tenant", "model"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            ),
            tenant_ids,
        )
        self.ttft = TenantLabelled(
            Histogram(
                "modelplex_gateway_time_to_first_token_seconds",
                "Time to the first streamed chunk.",
                ["tenant", "model"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            ),
            tenant_ids,
        )
        self.queue_depth = Gauge(
            "modelplex_gateway_queue_depth", "Requests waiting for a replica.", ["model"], registry=r
        )
        self.in_flight = Gauge(
            "modelplex_gateway_in_flight", "Requests in flight.", ["model", "replica"], registry=r
        )
        self.upstream_errors = Counter(
            "modelplex_gateway_upstream_errors",
            "Failed upstream attempts.",
            ["model", "replica", "kind"],
            registry=r,
        )
        self.replica_up = Gauge(
            "modelplex_gateway_replica_healthy",
            "1 when the replica receives traffic.",
            ["model", "replica"],
            registry=r,
        )
        self.journal_backlog = Gauge(
            "modelplex_gateway_journal_backlog_bytes", "Journaled usage not yet shipped.", registry=r
        )
        self.usage_shipped = Gauge(
            "modelplex_gateway_usage_events_shipped", "Usage events shipped since start.", registry=r
        )

        self.journal_unwritable = Gauge(
            "modelplex_gateway_journal_unwritable",
            "1 while the usage journal cannot be written (disk full or failing): new requests get 503.",
            registry=r,
        )
        self.journal_pending = Gauge(
            "modelplex_gateway_journal_pending_events",
            "Usage events served but not yet journaled, held in memory and in the in-flight table.",
            registry=r,
        )
        self.journal_write_failures = Counter(
            "modelplex_gateway_journal_write_failures", "Failed journal appends.", registry=r
        )
        self.connections_refused = Counter(
            "modelplex_gateway_connections_refused",
            "Client connections answered with a refusal and closed (gateway/http/limits.py).",
            ["reason"],
            registry=r,
        )
        self.limits_degraded = Gauge(
            "modelplex_gateway_limits_degraded",
            "1 while shared limits (Redis) are unreachable and this replica enforces its own.",
            registry=r,
        )
        self.ledger_failures = Counter(
            "modelplex_gateway_ledger_failures",
            "Ledger calls that failed: shipping usage ('ship'), or a key or budget check that no "
            "cached answer could stand in for ('authenticate', 'budget').",
            ["operation"],
            registry=r,
        )
        self.budget_use = BudgetUse(
            Gauge(
                "modelplex_gateway_budget_used_ratio",
                "Share of the tenant's monthly budget used (1 = all), by budget (token, spend), as the "
                "ledger last read it; tenant '*': the highest share of any tenant.",
                ["tenant", "budget"],
                registry=r,
            ),
            tenant_ids,
        )

    def watch_journal(self, backlog: Callable[[], float], shipped: Callable[[], float]) -> None:
        self.journal_backlog.set_function(backlog)
        self.usage_shipped.set_function(shipped)

    def watch_limits(self, degraded: Callable[[], bool]) -> None:
        self.limits_degraded.set_function(lambda: float(degraded()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
