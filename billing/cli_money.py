"""`modelplex plans|prices|usage|invoice|ledger`: limits, prices, usage, invoices, schema."""

from __future__ import annotations

import click

from modelplex.billing import migrate, price_history, statements, tenants, usage
from modelplex.billing.cli_support import instant, json_option, print_json, print_records, run
from modelplex.billing.export import invoice_csv
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import month_of, utcnow
from modelplex.billing.price_history import PriceTerms
from modelplex.billing.settings import BillingSettings
from modelplex.billing.usage import Granularity

_PRICE_COLUMNS = ["model", "currency", "inputPer1M", "cachedInputPer1M", "outputPer1M", "effectiveFrom", "id"]


@click.group("plans")
def plans_group() -> None:
    """Set and list plans (rate limits, budgets, allowed models)."""


@plans_group.command("set")
@click.argument("name")
@click.option("--rpm", type=click.IntRange(min=0), help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(min=0), help="Tokens per minute.")
@click.option("--concurrent", type=click.IntRange(min=0), help="Concurrent requests.")
@click.option("--monthly-tokens", type=click.IntRange(min=0), help="Monthly token budget.")
@click.option("--monthly-spend", help="Monthly spend budget, a decimal amount.")
@click.option("--currency", default="USD", show_default=True)
@click.option(
    "--allow-model", "allowed", multiple=True, help="A model the plan allows (repeat; default: all)."
)
@click.option("--slo-ttft-p95-ms", type=click.IntRange(min=1), help="Objective: TTFT p95 at most this.")
@click.option("--slo-availability", help="Objective: availability in percent, at least this (e.g. 99.5).")
def plans_set(
    name: str,
    rpm: int | None,
    tpm: int | None,
    concurrent: int | None,
    monthly_tokens: int | None,
    monthly_spend: str | None,
    currency: str,
    allowed: tuple[str, ...],
    slo_ttft_p95_ms: int | None,
    slo_availability: str | None,
) -> None:
    """Create plan NAME or replace its limits and objectives."""
    spec = tenants.PlanSpec(
        name=name,
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
        concurrent_requests=concurrent,
        monthly_token_budget=monthly_tokens,
        monthly_spend_budget=monthly_spend,
        currency=currency,
        allowed_models=list(allowed) or None,
        slo_ttft_p95_ms=slo_ttft_p95_ms,
        slo_availability_percent=slo_availability,
    )
    record = run(lambda ledger: tenants.put_plan(ledger, spec))
    click.echo(f"Set plan {record.name}")


@plans_group.command("list")
@json_option
def plans_list(as_json: bool) -> None:
    """List plans."""
    columns = ["name", "requestsPerMinute", "tokensPerMinute", "concurrentRequests"]
    columns += ["monthlyTokenBudget", "monthlySpendBudget", "currency", "allowedModels"]
    print_records(run(tenants.list_plans), columns, as_json)


@click.group("prices")
def prices_group() -> None:
    """Set and list model prices (per 1M tokens; history is kept)."""


@prices_group.command("set")
@click.option("--model", required=True)
@click.option("--input", "input_", required=True, help="Price per 1M uncached input tokens.")
@click.option("--output", required=True, help="Price per 1M output tokens.")
@click.option("--cached-input", help="Price per 1M cached input tokens (default: the input price).")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
@click.option("--effective-from", help="When the price takes effect, ISO 8601 (default: now).")
def prices_set(
    model: str, input_: str, output: str, cached_input: str | None, currency: str, effective_from: str | None
) -> None:
    """Add a price for MODEL (history is kept).

    Usage is billed at the price in force when it happened.
    """
    terms = PriceTerms(
        input_per_1m=input_, output_per_1m=output, cached_input_per_1m=cached_input, currency=currency
    )
    at = instant(effective_from, "effectiveFrom")
    record = run(lambda ledger: price_history.set_price(ledger, model, terms, at))
    click.echo(f"Set price model={record.model} id={record.id} from={record.effective_from.isoformat()}")


@prices_group.command("list")
@click.option("--model")
@json_option
def prices_list(model: str | None, as_json: bool) -> None:
    """List the price history."""
    print_records(run(lambda ledger: price_history.list_prices(ledger, model)), _PRICE_COLUMNS, as_json)


@click.command("usage")
@click.option("--tenant", help="Only this tenant (name or id).")
@click.option("--model", help="Only this model.")
@click.option(
    "--by", "granularity", type=click.Choice(["total", "day", "hour"]), default="total", show_default=True
)
@click.option("--since", help="Start, ISO 8601 (default: start of this month, UTC).")
@click.option("--until", help="End, exclusive, ISO 8601 (default: end of this month).")
@json_option
def usage_command(
    tenant: str | None,
    model: str | None,
    granularity: Granularity,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Usage per tenant and model, from the hourly rollups."""
    month = month_of(utcnow())
    start, end = instant(since, "start") or month.start, instant(until, "end") or month.end
    rows = run(
        lambda ledger: usage.usage_report(
            ledger, start, end, tenant=tenant, model=model, granularity=granularity
        )
    )
    columns = [
        "tenant",
        "model",
        "requests",
        "promptTokens",
        "cachedTokens",
        "completionTokens",
        "failed",
        "aborted",
    ]
    print_records(rows, ["bucket", *columns] if granularity != "total" else columns, as_json)


@click.command("invoice")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--period", required=True, help="Calendar month, YYYY-MM (UTC).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
def invoice_command(tenant: str, period: str, fmt: str) -> None:
    """A tenant's invoice for a calendar month (UTC).

    One line per model and price, totals per currency.
    """
    invoice = run(lambda ledger: statements.build_invoice(ledger, tenant, period))
    if fmt == "csv":
        click.echo(invoice_csv(invoice), nl=False)
    else:
        print_json(invoice.to_json())


@click.group("ledger")
def ledger_group() -> None:
    """The ledger database itself."""


@ledger_group.command("migrate")
def ledger_migrate() -> None:
    """Migrate the ledger schema to the latest revision."""

    async def upgrade(ledger: Ledger) -> str | None:
        await migrate.upgrade(ledger.engine)
        return await migrate.current_revision(ledger.engine)

    click.echo(f"Ledger schema at revision {run(upgrade)}")


@ledger_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
def ledger_serve(host: str, port: int) -> None:
    """Serve the admin API (/admin/v1/) and the console (/admin/) on their own, without the gateway."""
    import uvicorn

    from modelplex.billing.api.standalone import standalone_app

    uvicorn.run(standalone_app(BillingSettings()), host=host, port=port, log_level="info")
