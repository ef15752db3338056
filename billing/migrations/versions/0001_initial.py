"""Initial ledger schema: plans, tenants, API keys, prices, usage events, hourly rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations spell types out rather than import the models, so they keep meaning what they meant.
TIMESTAMP = sa.DateTime(timezone=True)
MONEY = sa.Numeric(precision=20, scale=10)


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, TIMESTAMP, nullable=nullable)


def _create_accounts() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        *(
            sa.Column(limit, sa.BigInteger(), nullable=True)
            for limit in (
                "requests_per_minute",
                "tokens_per_minute",
                "concurrent_requests",
                "monthly_token_budget",
            )
        ),
        sa.Column("monthly_spend_budget", MONEY, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("allowed_models", sa.JSON(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_tenants_status")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_tenants_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"])


def _create_prices() -> None:
    op.create_table(
        "prices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("input_per_1m", MONEY, nullable=False),
        sa.Column("cached_input_per_1m", MONEY, nullable=False),
        sa.Column("output_per_1m", MONEY, nullable=False),
        _timestamp("effective_from"),
        sa.Column("source", sa.String(256), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "input_per_1m >= 0 AND cached_input_per_1m >= 0 AND output_per_1m >= 0",
            name=op.f("ck_prices_non_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
        sa.UniqueConstraint("model", "effective_from", name=op.f("uq_prices_model_effective_from")),
    )


def _create_usage() -> None:
    op.create_table(
        "usage_events",
        sa.Column("request_id", sa.String(128), nullable=False),
        *(sa.Column(name, sa.String(32), nullable=False) for name in ("tenant_id", "key_id")),
        *(sa.Column(name, sa.String(256), nullable=False) for name in ("model", "deployment", "replica")),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("prompt_tokens", "cached_tokens", "completion_tokens")
        ),
        sa.Column("outcome", sa.String(16), nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at"),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("price_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_usage_events")),
    )
    op.create_index(op.f("ix_usage_events_tenant_id_started_at"), "usage_events", ["tenant_id", "started_at"])
    op.create_index(op.f("ix_usage_events_model_started_at"), "usage_events", ["model", "started_at"])
    op.create_table(
        "usage_hourly",
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("price_id", sa.Integer(), nullable=False),
        _timestamp("hour"),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (
                "requests",
                "aborted",
                "failed",
                "prompt_tokens",
                "cached_tokens",
                "completion_tokens",
            )
        ),
        sa.PrimaryKeyConstraint("tenant_id", "model", "price_id", "hour", name=op.f("pk_usage_hourly")),
    )
    op.create_index(op.f("ix_usage_hourly_hour"), "usage_hourly", ["hour"])


def upgrade() -> None:
    _create_accounts()
    _create_prices()
    _create_usage()


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_hourly_hour"), table_name="usage_hourly")
    op.drop_table("usage_hourly")
    op.drop_index(op.f("ix_usage_events_model_started_at"), table_name="usage_events")
    op.drop_index(op.f("ix_usage_events_tenant_id_started_at"), table_name="usage_events")
    op.drop_table("usage_events")
    op.drop_table("prices")
    op.drop_index(op.f("ix_api_keys_tenant_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("plans")
