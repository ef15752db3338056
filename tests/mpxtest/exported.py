"""Every series our dashboards and alert rules may read, with its labels.

The gateway's and the operator's come from their real registries: the gateway as `gateway run`
builds it (`build_app`), the autoscaler's metrics as the operator creates them. vLLM's are the ones
we depend on, named where we read them (`operator/autoscaler/signals.py`); vLLM labels them with the
served model (`model_name`) and its engine index (`engine`).
"""

from __future__ import annotations

from pathlib import Path

from modelplex.gateway.cli import build_app
from modelplex.gateway.settings import GatewaySettings
from modelplex.operator.autoscaler import signals
from modelplex.operator.autoscaler.metrics import AutoscalerMetrics
from mpxtest.promql import Labels, exported_series

VLLM_LABELS: Labels = frozenset({"model_name", "engine"})
VLLM_SERIES: dict[str, Labels] = {
    name: VLLM_LABELS for name in (signals.WAITING, signals.RUNNING, signals.KV_CACHE)
}


def gateway_series(journal_dir: Path) -> dict[str, Labels]:
    app = build_app(GatewaySettings(journal_dir=journal_dir, metrics_tenant_labels=True))
    return exported_series(app.metrics.registry)


def operator_series() -> dict[str, Labels]:
    return exported_series(AutoscalerMetrics().registry)


def our_series(journal_dir: Path) -> dict[str, Labels]:
    """Gateway, operator and vLLM series together (names never collide: each has its prefix)."""
    return {**gateway_series(journal_dir), **operator_series(), **VLLM_SERIES}
