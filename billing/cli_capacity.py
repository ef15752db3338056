"""`modelplex costs|capacity`: GPU cost history, serving intervals and the economics report."""

from __future__ import annotations

import click

from modelplex.billing import capacity, economics_report, gpu_costs
from modelplex.billing.cli_support import fail, instant, json_option, print_json, print_records, run
from modelplex.billing.errors import LedgerError
from modelplex.billing.periods import Period

_COST_COLUMNS = ["gpuProduct", "currency", "perHour", "effectiveFrom", "source", "id"]
_INTERVAL_COLUMNS = ["model", "replica", "gpus", "gpuProduct", "startedAt", "endedAt", "source"]
_ECONOMICS_COLUMNS = [
    "model",
    "gpuHours",
    "gpuCost",
    "tokensServed",
    "costPer1MTokens",
    "revenue",
    "margin",
    "tokensPerSecondPerGpu",
    "idleShare",
    "ttftP95Ms",
    "errorRate",
]

period_option = click.option("--period", help="Calendar month, YYYY-MM (UTC; default: this month).")
since_option = click.option("--since", help="Start on a whole UTC hour, ISO 8601 (instead of --period).")
until_option = click.option("--until", help="End, exclusive, on a whole UTC hour, ISO 8601.")


def _range(period: str | None, since: str | None, until: str | None) -> Period:
    try:
        return economics_report.report_range(period, since, until)
    except LedgerError as error:
        raise fail(error) from None


@click.group("costs")
def costs_group() -> None:
    """Set and list GPU costs (per GPU and hour; history is kept)."""


@costs_group.command("set")
@click.option("--gpu-product", required=True, help="As nodes label it, e.g. NVIDIA-H100-80GB-HBM3.")
@click.option("--per-hour", required=True, help="What one GPU costs per hour, a decimal amount.")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
@click.option("--effective-from", help="When the cost takes effect, ISO 8601 (default: now).")
def costs_set(gpu_product: str, per_hour: str, currency: str, effective_from: str | None) -> None:
    """Add a per-hour cost for one GPU of a product (history is kept)."""
    at = instant(effective_from, "effectiveFrom")
    record = run(lambda ledger: gpu_costs.set_cost(ledger, gpu_product, per_hour, currency, at))
    click.echo(
        f"Set GPU cost gpu_product={record.gpu_product} per_hour={record.per_hour} {record.currency} "
        f"id={record.id} from={record.effective_from.isoformat()}"
    )


@costs_group.command("list")
@click.option("--gpu-product", help="Only this GPU product.")
@json_option
def costs_list(gpu_product: str | None, as_json: bool) -> None:
    """List the GPU cost history."""
    print_records(run(lambda ledger: gpu_costs.list_costs(ledger, gpu_product)), _COST_COLUMNS, as_json)


@click.group("capacity")
def capacity_group() -> None:
    """Replica serving intervals and what GPU time cost and earned."""


@capacity_group.command("intervals")
@period_option
@since_option
@until_option
@click.option("--model", help="Only this model (served name).")
@json_option
def capacity_intervals(
    period: str | None, since: str | None, until: str | None, model: str | None, as_json: bool
) -> None:
    """Serving intervals overlapping the range."""
    span = _range(period, since, until)
    rows = run(lambda ledger: capacity.list_intervals(ledger, span.start, span.end, model))
    print_records(rows, _INTERVAL_COLUMNS, as_json)


@capacity_group.command("report")
@period_option
@since_option
@until_option
@click.option("--currency", default="USD", show_default=True)
@json_option
def capacity_report(
    period: str | None, since: str | None, until: str | None, currency: str, as_json: bool
) -> None:
    """Per model: GPU-hours, GPU cost, tokens, cost per 1M tokens, revenue, margin, idle share."""
    span = _range(period, since, until)
    report = run(lambda ledger: economics_report.economics_report(ledger, span, currency))
    if as_json:
        print_json(report.to_json())
        return
    click.echo(f"{report.start.isoformat()} .. {report.end.isoformat()}  currency={report.currency}")
    print_records([*report.models, report.total], _ECONOMICS_COLUMNS, False)
