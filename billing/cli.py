"""`modelplex tenants|keys|plans|prices|usage|invoice|ledger`: the ledger from the command line.

Every command works against MODELPLEX_DATABASE_URL (default: the local stack's SQLite file).
"""

from __future__ import annotations

import click

from modelplex.billing import keystore, tenants
from modelplex.billing.cli_support import instant, json_option, print_records, run


@click.group("tenants")
def tenants_group() -> None:
    """Create, list and suspend tenants."""


@tenants_group.command("create")
@click.argument("name")
@click.option("--plan", help="Name of the plan whose limits apply (default: unlimited).")
def tenants_create(name: str, plan: str | None) -> None:
    """Create tenant NAME."""
    record = run(lambda ledger: tenants.create_tenant(ledger, name, plan))
    click.echo(f"Created tenant {record.name} id={record.id} plan={record.plan or '-'}")


@tenants_group.command("list")
@json_option
def tenants_list(as_json: bool) -> None:
    """List tenants."""
    records = run(tenants.list_tenants)
    print_records(records, ["name", "status", "plan", "id", "createdAt"], as_json)


def _set_status(name: str, status: str) -> None:
    record = run(lambda ledger: tenants.update_tenant(ledger, name, status=status))
    click.echo(f"Tenant {record.name} is {record.status}")


@tenants_group.command("suspend")
@click.argument("name")
def tenants_suspend(name: str) -> None:
    """Suspend a tenant: its keys stop working within seconds."""
    _set_status(name, "suspended")


@tenants_group.command("resume")
@click.argument("name")
def tenants_resume(name: str) -> None:
    """Reactivate a suspended tenant."""
    _set_status(name, "active")


@tenants_group.command("set-plan")
@click.argument("name")
@click.argument("plan")
def tenants_set_plan(name: str, plan: str) -> None:
    """Move tenant NAME to PLAN."""
    record = run(lambda ledger: tenants.update_tenant(ledger, name, plan=plan))
    click.echo(f"Tenant {record.name} is on plan {record.plan}")


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys."""


@keys_group.command("create")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--name", default="", help="A label for the key.")
@click.option("--expires", help="Expiry, ISO 8601 (UTC when no offset).")
def keys_create(tenant: str, name: str, expires: str | None) -> None:
    """Create a key: printed once, alone on the last line."""
    expires_at = instant(expires, "expiresAt")
    created = run(lambda ledger: keystore.create_key(ledger, tenant, name, expires_at))
    click.echo(f"Created API key id={created.key.id} tenant={tenant} prefix={created.key.prefix}")
    click.echo("Store the key now: it is not shown again.")
    click.echo(created.plaintext)


@keys_group.command("list")
@click.option("--tenant", required=True, help="Tenant name or id.")
@json_option
def keys_list(tenant: str, as_json: bool) -> None:
    """List a tenant's keys (never the keys themselves)."""
    records = run(lambda ledger: keystore.list_keys(ledger, tenant))
    print_records(records, ["id", "prefix", "name", "createdAt", "expiresAt", "revokedAt"], as_json)


@keys_group.command("revoke")
@click.argument("key")
def keys_revoke(key: str) -> None:
    """Revoke KEY (its id, or the key itself).

    Gateways stop accepting it within seconds.
    """
    record = run(lambda ledger: keystore.revoke_key(ledger, key))
    click.echo(f"Revoked API key id={record.id} prefix={record.prefix}")
