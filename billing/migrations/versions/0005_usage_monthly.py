"""Monthly usage rollups beside the daily ones, filled from the daily rows already there; the daily
rollups' day index becomes one that covers the usage-by-day charts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
# Spelled out, not imported from billing.histograms: a migration keeps meaning what it meant.
HISTOGRAM_COLUMNS = tuple(
    f"{metric}_le_{bound}"
    for metric in ("ttft", "duration")
    for bound in ("50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000", "inf")
)
COUNTS = ("requests", "aborted", "failed", "prompt_tokens", "cached_tokens", "completion_tokens")


def _month_of_day() -> str:
    """The UTC calendar month of usage_daily.day, as each database stores timestamps."""
    if op.get_bind().dialect.name == "postgresql":
        return "date_trunc('month', day, 'UTC')"
    return "strftime('%Y-%m-01 00:00:00.000000', day)"


def upgrade() -> None:
    op.drop_index("ix_usage_daily_day", table_name="usage_daily")
    op.create_index("ix_usage_daily_by_day", "usage_daily", ["day", "model", *COUNTS])
    op.create_table(
        "usage_monthly",
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("price_id", sa.Integer(), nullable=False),
        sa.Column("month", TIMESTAMP, nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in HISTOGRAM_COLUMNS),
        sa.PrimaryKeyConstraint("tenant_id", "model", "price_id", "month", name=op.f("pk_usage_monthly")),
    )
    op.create_index(op.f("ix_usage_monthly_month"), "usage_monthly", ["month"])
    month = _month_of_day()
    sums = (*COUNTS, *HISTOGRAM_COLUMNS)
    op.execute(
        f"INSERT INTO usage_monthly (tenant_id, model, price_id, month, {', '.join(sums)}) "
        f"SELECT tenant_id, model, price_id, {month}, {', '.join(f'SUM({name})' for name in sums)} "
        f"FROM usage_daily GROUP BY tenant_id, model, price_id, {month}"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_monthly_month"), table_name="usage_monthly")
    op.drop_table("usage_monthly")
    op.drop_index("ix_usage_daily_by_day", table_name="usage_daily")
    op.create_index("ix_usage_daily_day", "usage_daily", ["day"])
