"""PromQL read as Prometheus reads it (promql-parser), checked against the series our components export.

`exported_series(registry)` lists what a prometheus_client registry puts on /metrics: every series
name (`_total`, `_bucket`, `_count`, ...) with its label names, read from the exposition text itself.
`expression_problems(expr, known)` parses one expression (Grafana's `$variables` filled in first) and
names every metric that is not in `known`, every label a selector, `by (...)`, `without (...)` or
`on (...)` uses that the series under it cannot have, and `histogram_quantile` over a series without
`le`. A label set that cannot be known (after `label_replace`, say) is not checked.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

import promql_parser as pq
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[str]
# Labels Prometheus adds to every series it scrapes (its own, and those a ServiceMonitor's
# Kubernetes service discovery sets): dashboards may group by them.
TARGET_LABELS: Labels = frozenset({"job", "instance", "namespace", "pod", "service", "endpoint", "container"})
# Grafana fills these in before Prometheus sees the query; any duration parses the same.
GRAFANA_INTERVALS = ("$__rate_interval", "$__interval", "$__range")
_VARIABLE = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def exported_series(registry: CollectorRegistry) -> dict[str, Labels]:
    """Each series name the registry exposes, with its label names (`le` on buckets)."""
    # The registry keeps its collectors privately; each labelled one gets a child here so that its
    # series (and their labels) show in the text, which is then read as Prometheus would read it.
    for collector in list(registry._collector_to_names):
        if isinstance(collector, MetricWrapperBase) and collector._labelnames:
            collector.labels(*("probe" for _ in collector._labelnames))
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in series.items()}


def interpolated(expr: str, keep_variables: bool = False) -> str:
    """`expr` as Grafana sends it: intervals become a duration, every other variable a regex that
    matches anything (dashboards use variables only in `=~` matchers), or stays as written."""
    for interval in GRAFANA_INTERVALS:
        expr = expr.replace(interval, "5m")
    return expr if keep_variables else _VARIABLE.sub(".*", expr)


def label_values_query(query: str) -> tuple[str | None, str]:
    """The selector and label of a Grafana `label_values(selector, label)` variable query."""
    found = _LABEL_VALUES.match(query.strip())
    if found is None:
        raise ValueError(f"not a label_values(selector, label) query: {query!r}")
    return found["selector"], found["label"]


def expression_problems(expr: str, known: Mapping[str, Labels]) -> list[str]:
    """What is wrong with `expr` against the `known` series; a parse error is one problem."""
    try:
        tree = pq.parse(interpolated(expr))
    except ValueError as error:
        return [f"does not parse: {error}"]
    problems: list[str] = []
    _Checker(known, problems).labels(tree)
    return problems


def selectors(expr: str) -> list[tuple[str | None, dict[str, str]]]:
    """Each series selector in `expr`: its metric name and its matchers (label -> value as written)."""
    found: list[tuple[str | None, dict[str, str]]] = []

    def visit(node: pq.Expr) -> None:
        if isinstance(node, pq.VectorSelector):
            found.append((node.name, {m.name: m.value for m in node.matchers.matchers}))

    pq.walk(pq.parse(interpolated(expr, keep_variables=True)), pre_visit=visit)
    return found


class _Checker:
    def __init__(self, known: Mapping[str, Labels], problems: list[str]) -> None:
        self._known = known
        self._problems = problems

    def _need(self, wanted: list[str], have: Labels | None, where: str) -> None:
        if have is None:
            return
        missing = sorted(set(wanted) - have)
        if missing:
            self._problems.append(f"{where} uses {missing}, which the series under it do not have")

    def labels(self, node: pq.Expr) -> Labels | None:
        """The label names of the series `node` yields (None: unknowable), noting problems on the way."""
        if isinstance(node, pq.VectorSelector):
            return self._selector(node)
        if isinstance(node, pq.MatrixSelector):
            return self._selector(node.vector_selector)
        if isinstance(node, pq.ParenExpr | pq.UnaryExpr | pq.SubqueryExpr):
            return self.labels(node.expr)
        if isinstance(node, pq.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pq.BinaryExpr):
            return self._binary(node)
        if isinstance(node, pq.Call):
            return self._call(node)
        return frozenset()  # number and string literals

    def _selector(self, selector: pq.VectorSelector) -> Labels | None:
        matchers = selector.matchers.matchers
        name = selector.name or next((m.value for m in matchers if m.name == "__name__"), None)
        if name is None:
            return None
        if name not in self._known:
            close = difflib.get_close_matches(name, list(self._known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self._problems.append(f"{name} is not a metric our components export{hint}")
            return None
        have = self._known[name] | TARGET_LABELS
        self._need([m.name for m in matchers if m.name != "__name__"], have, f"the selector of {name}")
        return have

    def _aggregate(self, node: pq.AggregateExpr) -> Labels | None:
        inner = self.labels(node.expr)
        if node.param is not None:
            self.labels(node.param)
        op = str(node.op)
        if op in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner
        if op == "count_values":
            return None
        modifier = node.modifier
        if modifier is None:
            return frozenset()
        grouped = list(modifier.labels)
        self._need(grouped, inner, f"{op} {'by' if modifier.type == pq.AggModifierType.By else 'without'}")
        if modifier.type == pq.AggModifierType.By:
            return frozenset(grouped)
        return None if inner is None else inner - set(grouped)

    def _binary(self, node: pq.BinaryExpr) -> Labels | None:
        left, right = self.labels(node.lhs), self.labels(node.rhs)
        modifier = node.modifier
        if modifier is not None and modifier.matching is not None:
            if modifier.matching.type == pq.LabelModifierType.Include:
                matched = list(modifier.matching.labels)
                self._need(matched, left, "on (...), left side")
                self._need(matched, right, "on (...), right side")
            if modifier.card == pq.VectorMatchCardinality.ManyToOne:
                return None if left is None else left | set(modifier.group_labels or ())
            if modifier.card == pq.VectorMatchCardinality.OneToMany:
                return None if right is None else right | set(modifier.group_labels or ())
        if isinstance(node.lhs, pq.NumberLiteral):
            return right
        if str(node.op) == "or":
            return None if left is None or right is None else left | right
        return left

    def _call(self, node: pq.Call) -> Labels | None:
        arguments = [self.labels(argument) for argument in node.args]
        name = node.func.name
        if name == "histogram_quantile":
            buckets = arguments[1]
            if buckets is not None and "le" not in buckets:
                self._problems.append("histogram_quantile over series without 'le' (sum by (le, ...))")
            return None if buckets is None else buckets - {"le"}
        if name in ("label_replace", "label_join"):
            return None
        vectors = [
            labels
            for argument, labels in zip(node.args, arguments, strict=True)
            if not isinstance(argument, pq.NumberLiteral | pq.StringLiteral)
        ]
        return vectors[0] if vectors else frozenset()
