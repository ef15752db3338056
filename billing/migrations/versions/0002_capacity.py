"""Capacity and economics: GPU cost history, replica serving intervals, per-minute replica busy
bitmaps, latency histograms on the hourly rollups, SLOs on plans.

Existing rollups get zero histogram counts (their events' latencies were not bucketed when they
were counted; re-deriving them from raw events would double-count nothing but costs a full scan, so
history before this revision simply has no latency data).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
# Spelled out, not imported from billing.histograms: a migration keeps meaning what it meant.
HISTOGRAM_COLUMNS = tuple(
    f"{metric}_le_{bound}"
    for metric in ("ttft", "duration")
    for bound in ("50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000", "inf")
)


def _create_gpu_costs() -> None:
    op.create_table(
        "gpu_costs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gpu_product", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("per_hour_nanos", sa.BigInteger(), nullable=False),
        sa.Column("effective_from", TIMESTAMP, nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("per_hour_nanos >= 0", name=op.f("ck_gpu_costs_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_costs")),
        sa.UniqueConstraint(
            "gpu_product", "effective_from", name=op.f("uq_gpu_costs_gpu_product_effective_from")
        ),
    )


def _create_intervals() -> None:
    op.create_table(
        "replica_intervals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("deployment", sa.String(253), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("replica", sa.String(256), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("gpu_product", sa.String(128), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("gpus >= 0", name=op.f("ck_replica_intervals_gpus_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replica_intervals")),
        sa.UniqueConstraint(
            "source",
            "namespace",
            "deployment",
            "replica",
            "started_at",
            name=op.f("uq_replica_intervals_key"),  # the convention's name is over 63 characters,
        ),
    )
    op.create_index(op.f("ix_replica_intervals_started_at"), "replica_intervals", ["started_at"])
    op.create_index(op.f("ix_replica_intervals_source_ended_at"), "replica_intervals", ["source", "ended_at"])
    op.create_table(
        "replica_busy_hourly",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("replica", sa.String(256), nullable=False),
        sa.Column("hour", TIMESTAMP, nullable=False),
        sa.Column("busy_minutes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "replica", "hour", name=op.f("pk_replica_busy_hourly")),
    )
    op.create_index(op.f("ix_replica_busy_hourly_hour"), "replica_busy_hourly", ["hour"])


def upgrade() -> None:
    _create_gpu_costs()
    _create_intervals()
    with op.batch_alter_table("usage_hourly") as batch:
        for name in HISTOGRAM_COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("slo_ttft_p95_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("slo_availability_ppm", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("slo_availability_ppm")
        batch.drop_column("slo_ttft_p95_ms")
    with op.batch_alter_table("usage_hourly") as batch:
        for name in reversed(HISTOGRAM_COLUMNS):
            batch.drop_column(name)
    op.drop_index(op.f("ix_replica_busy_hourly_hour"), table_name="replica_busy_hourly")
    op.drop_table("replica_busy_hourly")
    op.drop_index(op.f("ix_replica_intervals_source_ended_at"), table_name="replica_intervals")
    op.drop_index(op.f("ix_replica_intervals_started_at"), table_name="replica_intervals")
    op.drop_table("replica_intervals")
    op.drop_table("gpu_costs")
