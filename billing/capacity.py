"""The capacity ledger: replica serving intervals, recorded from observations of which replicas are Ready.

A producer (the operator on Kubernetes, the local runtime for `modelplex up`) reports, for its
`source`, the complete set of replicas Ready now, each with the moment it became Ready. The ledger
does the rest, level-based, so a report may be repeated, lost or replayed:

- a Ready replica with no open interval gets one, starting when it became Ready; the interval is
  keyed by (source, namespace, deployment, replica, start), so the same interval reported twice is
  one row, and a late replay cannot reopen an interval that was closed;
- a report older than the latest one recorded for its source is ignored (delivered late);
- the report may carry what the producer's autoscaler holds (its decisions and last reading), kept
  in the same transaction (billing/scaling.py);
- an open interval whose replica is missing from the report is closed. When the producer has been
  reporting continuously (its previous report within CONTINUOUS of this one), it ends at this
  report; otherwise the producer was away (restarted, cut off) and the interval ends when it was last
  seen Ready, so time nobody observed is never billed as capacity.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from modelplex.billing.errors import InvalidInput
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import Instant, as_utc, utcnow
from modelplex.billing.price_history import PriceTerms, apply_deployment_pricing
from modelplex.billing.scaling import ScalingReport, record_scaling
from modelplex.billing.schemas import Record, Request
from modelplex.billing.tables import ReplicaInterval

_log = logging.getLogger(__name__)
CONTINUOUS = timedelta(seconds=120)  # producers report at least every minute (see docs/architecture.md)
ReplicaKey = tuple[str, str, str]  # namespace, deployment, replica


class ReadyReplica(Request):
    namespace: str = Field(min_length=0, max_length=253)
    deployment: str = Field(min_length=1, max_length=253)
    model: str = Field(min_length=1, max_length=256)  # the served name, as usage events carry it
    replica: str = Field(min_length=1, max_length=256)
    gpus: int = Field(ge=0, le=1_000_000)
    gpu_product: str = Field(min_length=1, max_length=128)
    ready_since: Instant

    @property
    def key(self) -> ReplicaKey:
        return (self.namespace, self.deployment, self.replica)


class DeclaredPrice(Request):
    """A ModelDeployment's `spec.pricing`, for the model it serves (`source` names the ModelDeployment)."""

    model: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=256)
    pricing: PriceTerms


class Observation(Request):
    """Every replica of `source` that is Ready at `observed_at` (default: when the ledger receives it)."""

    source: str = Field(min_length=1, max_length=64)
    observed_at: Instant | None = None
    ready: list[ReadyReplica]
    scaling: list[ScalingReport] = Field(default_factory=list)  # what its autoscaler holds (scaling.py)
    prices: list[DeclaredPrice] = Field(default_factory=list)  # every ModelDeployment's spec.pricing


class ObservationResult(Record):
    opened: int
    closed: int
    open: int
    stale: bool = False  # older than a report already recorded: ignored (its scaling is still kept)
    decisions: int = 0  # autoscaler decisions not recorded before
    prices: int = 0  # declared prices that differed from the price in force, recorded now


class IntervalRecord(Record):
    source: str
    namespace: str
    deployment: str
    model: str
    replica: str
    gpus: int
    gpu_product: str
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None


def end_of(row: ReplicaInterval, at: datetime, previous_report: datetime | None) -> datetime:
    """When an open interval, no longer reported Ready at `at`, ended (see the module docstring)."""
    continuous = previous_report is not None and at - previous_report <= CONTINUOUS
    return max(row.started_at, at if continuous else row.last_seen_at)


def _insert(dialect: str) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(ReplicaInterval.__table__)


async def _open_rows(session: AsyncSession, source: str) -> list[ReplicaInterval]:
    query = (
        select(ReplicaInterval)
        .where(ReplicaInterval.source == source, ReplicaInterval.ended_at.is_(None))
        .order_by(ReplicaInterval.id)
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())


def _new_row(source: str, replica: ReadyReplica, at: datetime) -> dict[str, Any]:
    started = min(as_utc(replica.ready_since), at)
    return replica.model_dump(exclude={"ready_since"}) | {
        "source": source,
        "started_at": started,
        "last_seen_at": at,
    }


async def _open(session: AsyncSession, dialect: str, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    statement = _insert(dialect).on_conflict_do_nothing().returning(ReplicaInterval.__table__.c.id)
    connection = await session.connection()
    return len((await connection.execute(statement, rows)).scalars().all())


async def _last_report(session: AsyncSession, source: str) -> datetime | None:
    query = select(func.max(ReplicaInterval.last_seen_at)).where(ReplicaInterval.source == source)
    return (await session.execute(query)).scalar_one_or_none()


async def _apply(session: AsyncSession, dialect: str, report: Observation, at: datetime) -> ObservationResult:
    open_rows = await _open_rows(session, report.source)
    previous = await _last_report(session, report.source)
    if previous is not None and at < previous:  # a stale report, delivered late: newer ones won
        return ObservationResult(opened=0, closed=0, open=len(open_rows), stale=True)
    ready = {replica.key: replica for replica in report.ready}
    closed, still_open = 0, []
    for row in open_rows:
        seen = ready.get((row.namespace, row.deployment, row.replica))
        if seen is not None and as_utc(seen.ready_since) <= row.started_at:
            still_open.append(row.id)
            continue
        ended = end_of(row, at, previous)
        if seen is not None:  # Ready again since: the old interval ended before the new one began
            ended = min(ended, max(row.started_at, as_utc(seen.ready_since)))
        row.ended_at = ended
        closed += 1
    if still_open:
        await session.execute(
            update(ReplicaInterval).where(ReplicaInterval.id.in_(still_open)).values(last_seen_at=at)
        )
    await session.flush()
    kept = {(r.namespace, r.deployment, r.replica) for r in open_rows if r.id in set(still_open)}
    fresh = [_new_row(report.source, r, at) for key, r in sorted(ready.items()) if key not in kept]
    opened = await _open(session, dialect, fresh)
    return ObservationResult(opened=opened, closed=closed, open=len(still_open) + opened)


async def record_observation(ledger: Ledger, report: Observation) -> ObservationResult:
    """Open, extend and close serving intervals of `report.source` so they match what it saw."""
    at = as_utc(report.observed_at) if report.observed_at is not None else utcnow()
    async with ledger.transaction() as session:
        result = await _apply(session, ledger.dialect, report, at)
        if report.scaling:
            added = await record_scaling(session, ledger.dialect, report.source, report.scaling)
            result = result.model_copy(update={"decisions": added})
    if report.prices and not result.stale:  # a late report could carry a price since replaced
        result = result.model_copy(update={"prices": await _record_prices(ledger, report.prices)})
    if result.opened or result.closed:
        _log.info(
            "Recorded capacity source=%s opened=%d closed=%d open=%d",
            report.source,
            result.opened,
            result.closed,
            result.open,
        )
    return result


async def _record_prices(ledger: Ledger, prices: list[DeclaredPrice]) -> int:
    """Record each declared price that differs from the one in force (the same spec adds nothing)."""
    recorded = 0
    for declared in prices:
        try:
            added = await apply_deployment_pricing(ledger, declared.model, declared.pricing, declared.source)
        except InvalidInput as error:  # one bad spec must not hold back the others or the report
            _log.warning(
                "Ignored declared price model=%s source=%s error=%s", declared.model, declared.source, error
            )
            continue
        recorded += added is not None
    return recorded


async def intervals_between(
    session: AsyncSession, start: datetime, end: datetime, model: str | None = None
) -> list[IntervalRecord]:
    """Intervals that overlap [start, end) (open ones too), oldest first."""
    query = (
        select(ReplicaInterval)
        .where(
            ReplicaInterval.started_at < end,
            or_(ReplicaInterval.ended_at.is_(None), ReplicaInterval.ended_at > start),
        )
        .order_by(ReplicaInterval.started_at, ReplicaInterval.id)
    )
    if model is not None:
        query = query.where(ReplicaInterval.model == model)
    rows = (await session.execute(query)).scalars()
    return [IntervalRecord.model_validate(row, from_attributes=True) for row in rows]


async def list_intervals(
    ledger: Ledger, start: datetime, end: datetime, model: str | None = None
) -> list[IntervalRecord]:
    async with ledger.sessions() as session:
        return await intervals_between(session, start, end, model)
