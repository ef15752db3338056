"""The autoscaler in the ledger: its decisions (append-only) and its latest reading per ModelDeployment.

They come with the capacity observations (`Observation.scaling`), from the operator over the admin
API and from `modelplex up` directly, each as its autoscaler keeps them: the last decisions (the
ModelDeployment's status.scaling holds the same 20) and the signals of the last reading. A decision
is keyed by (source, namespace, deployment, time), so the same decisions reported every interval add
one row each, once; a reading replaces the held one only if it is newer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import Instant, as_utc
from modelplex.billing.schemas import Record, Request
from modelplex.billing.tables import ScalingDecisionRow, ScalingObservationRow

MAX_DECISIONS = 100  # per report; the operator keeps 20 per ModelDeployment
SIGNALS = ("demand", "waiting", "running", "gateway_queued", "kv_cache_utilization")


class LoadSignals(Request):
    """The load the autoscaler read, summed over the model's replicas and gateways (as in the status)."""

    demand: int = Field(ge=0)
    waiting: int = Field(ge=0)
    running: int = Field(ge=0)
    kv_cache_utilization: float | None = Field(default=None, ge=0, le=1)
    gateway_queued: int = Field(default=0, ge=0)


class DecisionReport(Request):
    """One change of replicas, as status.scaling.decisions states it."""

    time: Instant
    from_replicas: int = Field(alias="from", ge=0)
    to: int = Field(ge=0)
    reason: str = Field(min_length=1, max_length=64)
    message: str = Field(default="", max_length=1024)
    signals: LoadSignals | None = None


class ScalingReport(Request):
    """What one ModelDeployment's autoscaler holds now."""

    namespace: str = Field(min_length=0, max_length=253)
    deployment: str = Field(min_length=1, max_length=253)
    model: str = Field(min_length=1, max_length=256)
    desired_replicas: int = Field(ge=0)
    observed_at: Instant
    signals: LoadSignals | None = None  # None: the last reading could not be made
    decisions: list[DecisionReport] = Field(default_factory=list, max_length=MAX_DECISIONS)


class DecisionRecord(Record):
    namespace: str
    deployment: str
    model: str
    decided_at: datetime
    from_replicas: int
    to_replicas: int
    reason: str
    message: str
    demand: int | None
    waiting: int | None
    running: int | None
    gateway_queued: int | None
    kv_cache_utilization: float | None


class ReadingRecord(Record):
    namespace: str
    deployment: str
    model: str
    observed_at: datetime
    desired_replicas: int
    demand: int | None
    waiting: int | None
    running: int | None
    gateway_queued: int | None
    kv_cache_utilization: float | None

    @property
    def queue_depth(self) -> int | None:
        """Requests waiting for a slot: in the engines' queues and held by gateways."""
        if self.waiting is None:
            return None
        return self.waiting + (self.gateway_queued or 0)


def _signals(signals: LoadSignals | None) -> dict[str, Any]:
    if signals is None:
        return dict.fromkeys(SIGNALS)
    return {name: getattr(signals, name) for name in SIGNALS}


def decision_rows(source: str, reports: Sequence[ScalingReport]) -> list[dict[str, Any]]:
    """The scaling_decisions rows of `reports`, one per (deployment, time); pure."""
    rows: dict[tuple[str, str, datetime], dict[str, Any]] = {}
    for report in reports:
        for decision in report.decisions:
            at = as_utc(decision.time)
            rows[(report.namespace, report.deployment, at)] = {
                "source": source,
                "namespace": report.namespace,
                "deployment": report.deployment,
                "model": report.model,
                "decided_at": at,
                "from_replicas": decision.from_replicas,
                "to_replicas": decision.to,
                "reason": decision.reason,
                "message": decision.message,
                **_signals(decision.signals),
            }
    return [rows[key] for key in sorted(rows)]


def reading_rows(source: str, reports: Sequence[ScalingReport]) -> list[dict[str, Any]]:
    """The scaling_observations rows of `reports`, the newest per deployment; pure."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for report in reports:
        key, at = (report.namespace, report.deployment), as_utc(report.observed_at)
        if key in rows and rows[key]["observed_at"] >= at:
            continue
        rows[key] = {
            "source": source,
            "namespace": report.namespace,
            "deployment": report.deployment,
            "model": report.model,
            "observed_at": at,
            "desired_replicas": report.desired_replicas,
            **_signals(report.signals),
        }
    return [rows[key] for key in sorted(rows)]


def _insert(dialect: str, table: Any) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


async def record_scaling(
    session: AsyncSession, dialect: str, source: str, reports: Sequence[ScalingReport]
) -> int:
    """Add the decisions not held yet and keep the newest reading of each deployment; returns how many
    decisions were new."""
    connection = await session.connection()
    added = 0
    decisions = decision_rows(source, reports)
    if decisions:
        table = ScalingDecisionRow.__table__
        statement = _insert(dialect, table).on_conflict_do_nothing().returning(table.c.id)
        added = len((await connection.execute(statement, decisions)).scalars().all())
    readings = reading_rows(source, reports)
    if readings:
        table = ScalingObservationRow.__table__
        statement = _insert(dialect, table)
        statement = statement.on_conflict_do_update(
            index_elements=["source", "namespace", "deployment"],
            set_={
                name: statement.excluded[name]
                for name in ("model", "observed_at", "desired_replicas", *SIGNALS)
            },
            where=table.c.observed_at < statement.excluded.observed_at,
        )
        await connection.execute(statement, readings)
    return added


async def decisions_between(
    session: AsyncSession, model: str, start: datetime, end: datetime, limit: int | None = None
) -> list[DecisionRecord]:
    """The decisions about `model` in [start, end), newest first (the newest `limit` of them)."""
    row = ScalingDecisionRow
    query = (
        select(row)
        .where(row.model == model, row.decided_at >= start, row.decided_at < end)
        .order_by(row.decided_at.desc(), row.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    found = (await session.execute(query)).scalars()
    return [DecisionRecord.model_validate(item, from_attributes=True) for item in found]


async def readings_of(session: AsyncSession, model: str) -> list[ReadingRecord]:
    """The latest reading of each deployment serving `model`."""
    row = ScalingObservationRow
    query = select(row).where(row.model == model).order_by(row.namespace, row.deployment)
    found = (await session.execute(query)).scalars()
    return [ReadingRecord.model_validate(item, from_attributes=True) for item in found]


async def list_decisions(ledger: Ledger, model: str, start: datetime, end: datetime) -> list[DecisionRecord]:
    async with ledger.sessions() as session:
        return await decisions_between(session, model, start, end)


async def list_readings(ledger: Ledger, model: str) -> list[ReadingRecord]:
    async with ledger.sessions() as session:
        return await readings_of(session, model)
