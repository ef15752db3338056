"""Daily usage rollups beside the hourly ones, filled from the hourly rows already there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
# Spelled out, not imported from billing.histograms: a migration keeps meaning what it meant.
HISTOGRAM_COLUMNS = tuple(
    f"{metric}_le_{bound}"
    for metric in ("ttft", "duration")
    for bound in ("50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000", "inf")
)
SUMS = (
    "requests",
    "aborted",
    "failed",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    *HISTOGRAM_COLUMNS,
)


def _day_of_hour() -> str:
    """The UTC day of usage_hourly.hour, as each database stores timestamps."""
    if op.get_bind().dialect.name == "postgresql":
        return "date_trunc('day', hour, 'UTC')"
    return "strftime('%Y-%m-%d 00:00:00.000000', hour)"


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("price_id", sa.Integer(), nullable=False),
        sa.Column("day", TIMESTAMP, nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in SUMS[:6]),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in HISTOGRAM_COLUMNS),
        sa.PrimaryKeyConstraint("tenant_id", "model", "price_id", "day", name=op.f("pk_usage_daily")),
    )
    op.create_index(op.f("ix_usage_daily_day"), "usage_daily", ["day"])
    day = _day_of_hour()
    columns = ", ".join(SUMS)
    sums = ", ".join(f"SUM({name})" for name in SUMS)
    op.execute(
        f"INSERT INTO usage_daily (tenant_id, model, price_id, day, {columns}) "
        f"SELECT tenant_id, model, price_id, {day}, {sums} FROM usage_hourly "
        f"GROUP BY tenant_id, model, price_id, {day}"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_daily_day"), table_name="usage_daily")
    op.drop_table("usage_daily")
