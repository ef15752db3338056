"""The Grafana dashboards the chart ships, built from a few typed parts so every query has one form.

    python deploy/monitoring/dashboards.py        # rewrites charts/modelplex/files/dashboards/*.json

Every rate is `rate(...[$__rate_interval])`, every quantile `histogram_quantile(q, sum by (le, ...)
(rate(..._bucket[$__rate_interval])))`, every panel reads the `${datasource}` variable, and `model` /
`tenant` filter every series that has those labels. A unit test fails when the committed JSON is not
what this builds, and reads each query against the metrics our components export.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "charts" / "modelplex" / "files" / "dashboards"
SCHEMA_VERSION = 39  # Grafana 10.4 / 11
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24  # Grafana's grid
GATEWAY = 'model=~"$model", tenant=~"$tenant"'
MODEL = 'model=~"$model"'
ENGINE = 'model_name=~"$model"'  # vLLM labels its series with the served model name
SERVED = GATEWAY + ', type=~"prompt|completion"'  # cached tokens are part of the prompt
FIVE_XX = GATEWAY + ', code=~"5.."'
QUANTILES = (0.5, 0.95, 0.99)
DECISIONS = "modelplex_autoscaler_decisions_total"
UNREADABLE = "modelplex_autoscaler_unreadable_signals_total"
Json = dict[str, Any]


def rate(series: str, selector: str = "") -> str:
    return f"rate({series}{{{selector}}}[$__rate_interval])"


def increase(series: str, selector: str = "") -> str:
    return f"increase({series}{{{selector}}}[$__rate_interval])"


def quantile(q: float, histogram: str, by: str, selector: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) ({rate(histogram + '_bucket', selector)}))"


def healthy_replicas(selector: str) -> str:
    """Replicas some gateway sends traffic to (each gateway reports each replica it knows)."""
    return (
        f"count by (model) (max by (model, replica) (modelplex_gateway_replica_healthy{{{selector}}}) == 1)"
    )


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "heatmap", "bargauge"
    width: int = 12
    height: int = 8
    maximum: float | None = None

    def json(self, panel_id: int, x: int, y: int) -> Json:
        defaults: Json = {"unit": self.unit, "min": 0}
        if self.maximum is not None:
            defaults["max"] = self.maximum
        panel: Json = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": self._options(),
            "targets": [self._target(t, chr(ord("A") + i)) for i, t in enumerate(self.targets)],
        }
        return panel

    def _target(self, target: Target, ref: str) -> Json:
        shown: Json = {"refId": ref, "datasource": DATASOURCE, "expr": target.expr, "range": True}
        shown["legendFormat"] = target.legend
        if self.kind == "heatmap":
            shown["format"] = "heatmap"
        return shown

    def _options(self) -> Json:
        if self.kind == "heatmap":
            return {"calculate": False, "cellGap": 1, "yAxis": {"unit": self.unit}, "legend": {"show": True}}
        if self.kind == "bargauge":
            return {
                "displayMode": "gradient",
                "orientation": "horizontal",
                "showUnfilled": True,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            }
        return {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["mean", "max", "lastNotNull"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # label_values(selector, label)

    def json(self) -> Json:
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "query": self.query,
            "definition": self.query,
            "refresh": 2,  # on time range change
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
            "regex": "",
            "hide": 0,
        }


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = field(default=())

    def json(self) -> Json:
        panels: list[Json] = []
        y = 0
        for row in self.rows:
            panels.append(
                {
                    "id": len(panels) + 1,
                    "type": "row",
                    "title": row.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
            x = 0
            height = 0
            for panel in row.panels:
                if x + panel.width > WIDTH:
                    x, y, height = 0, y + height, 0
                panels.append(panel.json(len(panels) + 1, x, y))
                x += panel.width
                height = max(height, panel.height)
            y += height
        datasource: Json = {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
        }
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["modelplex"],
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "timezone": "browser",
            "time": {"from": "now-6h", "to": "now"},
            "refresh": "30s",
            "annotations": {"list": []},
            "links": [],
            "templating": {"list": [datasource, *(v.json() for v in self.variables)]},
            "panels": panels,
        }


VARIABLES = (
    Variable("model", "Model", "label_values(modelplex_gateway_requests_total, model)"),
    Variable("tenant", "Tenant", 'label_values(modelplex_gateway_requests_total{model=~"$model"}, tenant)'),
)
TENANT_NOTE = (
    " Tenants show as '*' unless the gateway runs with MODELPLEX_GATEWAY_METRICS_TENANT_LABELS=true."
)


def _latency(title: str, histogram: str, what: str) -> tuple[Panel, Panel, Panel]:
    by_model = Panel(
        f"{title} by model (p50, p95, p99)",
        f"{what}, from the gateway's histogram.",
        tuple(
            Target(quantile(q, histogram, "model", GATEWAY), f"{{{{model}}}} p{round(q * 100)}")
            for q in QUANTILES
        ),
        unit="s",
        width=8,
    )
    by_tenant = Panel(
        f"{title} p95 by tenant",
        f"{what}, 95th percentile per tenant." + TENANT_NOTE,
        (Target(quantile(0.95, histogram, "tenant", GATEWAY), "{{tenant}}"),),
        unit="s",
        width=8,
    )
    heatmap = Panel(
        f"{title} histogram",
        f"{what}: requests per bucket over time.",
        (Target(f"sum by (le) ({rate(histogram + '_bucket', GATEWAY)})", "{{le}}"),),
        unit="s",
        kind="heatmap",
        width=8,
    )
    return by_model, by_tenant, heatmap


def _errors() -> Row:
    requests = "modelplex_gateway_requests_total"
    five_xx = f"sum by (model) ({rate(requests, FIVE_XX)})"
    return Row(
        "Errors",
        (
            Panel(
                "5xx share by model",
                "Answers with a 5xx status among all answers (503: queue full, cold start too long, "
                "ledger or journal unavailable; 502/504: the engine failed).",
                (Target(f"{five_xx} / sum by (model) ({rate(requests, GATEWAY)})", "{{model}}"),),
                unit="percentunit",
                width=8,
            ),
            Panel(
                "Answers by status",
                "Requests answered per second, by HTTP status (499: the client left).",
                (Target(f"sum by (code) ({rate(requests, GATEWAY)})", "{{code}}"),),
                unit="reqps",
                width=8,
            ),
            Panel(
                "Upstream failures by model and kind",
                "Failed attempts to reach an engine replica (a failed attempt before the first byte is "
                "retried once on another replica).",
                (
                    Target(
                        f"sum by (model, kind) ({rate('modelplex_gateway_upstream_errors_total', MODEL)})",
                        "{{model}} {{kind}}",
                    ),
                ),
                unit="ops",
                width=8,
            ),
        ),
    )


def gateway_dashboard() -> Dashboard:
    requests, tokens = "modelplex_gateway_requests_total", "modelplex_gateway_tokens_total"
    return Dashboard(
        uid="modelplex-gateway",
        title="Modelplex / Gateway",
        description="Requests, tokens, latency, errors, queues, usage journal and limits of the gateway.",
        variables=VARIABLES,
        rows=(
            Row(
                "Traffic",
                (
                    Panel(
                        "Requests by model",
                        "Requests answered per second, any status.",
                        (Target(f"sum by (model) ({rate(requests, GATEWAY)})", "{{model}}"),),
                        unit="reqps",
                    ),
                    Panel(
                        "Requests by tenant",
                        "Requests answered per second, any status." + TENANT_NOTE,
                        (Target(f"sum by (tenant) ({rate(requests, GATEWAY)})", "{{tenant}}"),),
                        unit="reqps",
                    ),
                    Panel(
                        "Tokens/s by model and type",
                        "Prompt, cached (part of the prompt) and completion tokens per second.",
                        (Target(f"sum by (model, type) ({rate(tokens, GATEWAY)})", "{{model}} {{type}}"),),
                    ),
                    Panel(
                        "Tokens/s by tenant",
                        "Prompt plus completion tokens per second." + TENANT_NOTE,
                        (Target(f"sum by (tenant) ({rate(tokens, SERVED)})", "{{tenant}}"),),
                    ),
                ),
            ),
            Row(
                "Latency",
                _latency(
                    "Time to first token",
                    "modelplex_gateway_time_to_first_token_seconds",
                    "Time to the first streamed chunk",
                )
                + _latency(
                    "Request duration", "modelplex_gateway_request_duration_seconds", "Whole request duration"
                ),
            ),
            _errors(),
            Row(
                "Queue and replicas",
                (
                    Panel(
                        "Queued requests by model",
                        "Requests each gateway holds for a free replica (or, at zero replicas, for a cold "
                        "start).",
                        (Target(f"sum by (model) (modelplex_gateway_queue_depth{{{MODEL}}})", "{{model}}"),),
                        width=8,
                    ),
                    Panel(
                        "In flight by model",
                        "Requests being served by an engine replica.",
                        (Target(f"sum by (model) (modelplex_gateway_in_flight{{{MODEL}}})", "{{model}}"),),
                        width=8,
                    ),
                    Panel(
                        "Healthy replicas by model",
                        "Replicas that receive traffic (passive health: ejected after failures, back after "
                        "a good probe).",
                        (Target(healthy_replicas(MODEL), "{{model}}"),),
                        width=8,
                    ),
                ),
            ),
            Row(
                "Usage journal, ledger and limits",
                (
                    Panel(
                        "Journal backlog by gateway",
                        "Journaled usage not yet shipped to the ledger; it grows while the ledger is "
                        "unreachable.",
                        (
                            Target(
                                "max by (instance) (modelplex_gateway_journal_backlog_bytes)", "{{instance}}"
                            ),
                        ),
                        unit="bytes",
                        width=8,
                    ),
                    Panel(
                        "Ledger failures by operation",
                        "Failed shipments, and key or budget checks that no cached answer could stand in "
                        "for.",
                        (
                            Target(
                                f"sum by (operation) ({rate('modelplex_gateway_ledger_failures_total')})",
                                "{{operation}}",
                            ),
                        ),
                        unit="ops",
                        width=8,
                    ),
                    Panel(
                        "Journal unwritable, events held",
                        "1 while a gateway cannot write its journal (new requests get 503); usage events "
                        "held in memory meanwhile.",
                        (
                            Target(
                                "max by (instance) (modelplex_gateway_journal_unwritable)",
                                "unwritable {{instance}}",
                            ),
                            Target(
                                "sum by (instance) (modelplex_gateway_journal_pending_events)",
                                "held {{instance}}",
                            ),
                        ),
                        width=8,
                    ),
                    Panel(
                        "Degraded limits",
                        "1 while shared limits (Redis) are unreachable and each gateway replica enforces "
                        "its own.",
                        (Target("max by (instance) (modelplex_gateway_limits_degraded)", "{{instance}}"),),
                        width=12,
                        maximum=1,
                    ),
                    Panel(
                        "Monthly budget used (top 10)",
                        "Share of the tenant's monthly budget used, as the ledger last read it; '*': the "
                        "highest share of any tenant while tenant ids are not published.",
                        (
                            Target(
                                "topk(10, max by (tenant, budget) "
                                '(modelplex_gateway_budget_used_ratio{tenant=~"$tenant"}))',
                                "{{tenant}} {{budget}}",
                            ),
                        ),
                        unit="percentunit",
                        kind="bargauge",
                        width=12,
                        maximum=1,
                    ),
                ),
            ),
        ),
    )


def models_dashboard() -> Dashboard:
    return Dashboard(
        uid="modelplex-models",
        title="Modelplex / Models",
        description="Replicas, queues, KV cache and the autoscaler's decisions, per model.",
        variables=VARIABLES,
        rows=(
            Row(
                "Replicas and the autoscaler",
                (
                    Panel(
                        "Replicas: asked for and healthy",
                        "What the autoscaler asks for (spec.replicas), and the replicas gateways send "
                        "traffic to.",
                        (
                            Target(
                                f"max by (model) (modelplex_autoscaler_desired_replicas{{{MODEL}}})",
                                "{{model}} desired",
                            ),
                            Target(healthy_replicas(MODEL), "{{model}} healthy"),
                        ),
                    ),
                    Panel(
                        "Autoscaler decisions by reason",
                        "Changes of spec.replicas the autoscaler made in each interval, by reason.",
                        (
                            Target(
                                f"sum by (model, reason) ({increase(DECISIONS, MODEL)})",
                                "{{model}} {{reason}}",
                            ),
                        ),
                    ),
                    Panel(
                        "Unreadable readings",
                        "Readings in which some engine or gateway /metrics could not be read (the "
                        "autoscaler decided nothing).",
                        (
                            Target(
                                f"sum by (model) ({rate(UNREADABLE, MODEL)})",
                                "{{model}}",
                            ),
                        ),
                        unit="ops",
                        width=24,
                    ),
                ),
            ),
            Row(
                "Load",
                (
                    Panel(
                        "Waiting: engines and gateways",
                        "Requests waiting inside the engines (vLLM's scheduler queue) and held by the "
                        "gateways.",
                        (
                            Target(
                                f"sum by (model_name) (vllm:num_requests_waiting{{{ENGINE}}})",
                                "{{model_name}} engines",
                            ),
                            Target(
                                f"sum by (model) (modelplex_gateway_queue_depth{{{MODEL}}})",
                                "{{model}} gateways",
                            ),
                        ),
                        width=8,
                    ),
                    Panel(
                        "Running in the engines",
                        "Requests the engines are generating for.",
                        (
                            Target(
                                f"sum by (model_name) (vllm:num_requests_running{{{ENGINE}}})",
                                "{{model_name}}",
                            ),
                        ),
                        width=8,
                    ),
                    Panel(
                        "Tokens/s by model",
                        "Prompt plus completion tokens served per second.",
                        (
                            Target(
                                f"sum by (model) ({rate('modelplex_gateway_tokens_total', SERVED)})",
                                "{{model}}",
                            ),
                        ),
                        width=8,
                    ),
                    Panel(
                        "KV cache used: mean and fullest replica",
                        "Share of the engines' KV cache blocks in use.",
                        (
                            Target(
                                f"avg by (model_name) (vllm:kv_cache_usage_perc{{{ENGINE}}})",
                                "{{model_name}} mean",
                            ),
                            Target(
                                f"max by (model_name) (vllm:kv_cache_usage_perc{{{ENGINE}}})",
                                "{{model_name}} max",
                            ),
                        ),
                        unit="percentunit",
                        maximum=1,
                    ),
                    Panel(
                        "KV cache used by replica",
                        "Share of each engine pod's KV cache in use.",
                        (
                            Target(
                                f"max by (model_name, pod) (vllm:kv_cache_usage_perc{{{ENGINE}}})",
                                "{{model_name}} {{pod}}",
                            ),
                        ),
                        unit="percentunit",
                        maximum=1,
                    ),
                ),
            ),
        ),
    )


DASHBOARDS = (gateway_dashboard, models_dashboard)


def rendered() -> dict[str, str]:
    """File name -> JSON text, as committed under charts/modelplex/files/dashboards/."""
    boards = (build() for build in DASHBOARDS)
    return {f"{board.uid}.json": json.dumps(board.json(), indent=2) + "\n" for board in boards}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (OUT / name).write_text(text)
        print(OUT / name, file=sys.stderr)


if __name__ == "__main__":
    main()
