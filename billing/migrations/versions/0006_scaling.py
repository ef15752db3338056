"""The autoscaler's decisions (append-only) and its latest reading of each ModelDeployment.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _signals() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(name, sa.Integer(), nullable=True) for name in ("demand", "waiting", "running")),
        sa.Column("gateway_queued", sa.Integer(), nullable=True),
        sa.Column("kv_cache_utilization", sa.Float(), nullable=True),
    ]


def _deployment() -> list[sa.Column[Any]]:
    return [
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("deployment", sa.String(253), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "scaling_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_deployment(),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.Column("from_replicas", sa.Integer(), nullable=False),
        sa.Column("to_replicas", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.String(1024), nullable=False),
        *_signals(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scaling_decisions")),
        sa.UniqueConstraint(
            "source", "namespace", "deployment", "decided_at", name=op.f("uq_scaling_decisions_key")
        ),
    )
    op.create_index(
        op.f("ix_scaling_decisions_model_decided_at"), "scaling_decisions", ["model", "decided_at"]
    )
    op.create_table(
        "scaling_observations",
        *_deployment(),
        sa.Column("observed_at", TIMESTAMP, nullable=False),
        sa.Column("desired_replicas", sa.Integer(), nullable=False),
        *_signals(),
        sa.PrimaryKeyConstraint("source", "namespace", "deployment", name=op.f("pk_scaling_observations")),
    )
    op.create_index(op.f("ix_scaling_observations_model"), "scaling_observations", ["model"])


def downgrade() -> None:
    op.drop_index(op.f("ix_scaling_observations_model"), table_name="scaling_observations")
    op.drop_table("scaling_observations")
    op.drop_index(op.f("ix_scaling_decisions_model_decided_at"), table_name="scaling_decisions")
    op.drop_table("scaling_decisions")
