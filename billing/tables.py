"""The ledger's schema (SQLAlchemy 2.0 declarative). Alembic migrations must match it exactly.

Usage rows carry no foreign keys: they record what was served, and one odd row must never make a
whole ingest batch fail. Prices are append-only; a usage row keeps the id of the price in force
when its request started, so invoices never depend on when they are computed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from modelplex.billing.histograms import HISTOGRAM_COLUMNS
from modelplex.billing.periods import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY_DIGITS = 20  # digits of a money column in all
PRICE_SCALE = 10  # digits kept after the point in per-1M prices
BIGINT_MAX = 2**63 - 1  # the largest value of a BIGINT column (and of SQLite's INTEGER)
UNPRICED = 0  # rollup price_id for usage of a model that had no price when it happened


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


Money = Numeric(MONEY_DIGITS, PRICE_SCALE, asdecimal=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, Decimal: Money}


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    requests_per_minute: Mapped[int | None] = mapped_column(BigInteger)
    tokens_per_minute: Mapped[int | None] = mapped_column(BigInteger)
    concurrent_requests: Mapped[int | None] = mapped_column(BigInteger)
    monthly_token_budget: Mapped[int | None] = mapped_column(BigInteger)
    monthly_spend_budget: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3))
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)
    # Service-level objectives (None: none stated): TTFT p95 in ms; availability in parts per million
    # (995000 = 99.5 %), an integer so SQLite keeps it exact.
    slo_ttft_p95_ms: Mapped[int | None] = mapped_column(BigInteger)
    slo_availability_ppm: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended')", name="status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Price(Base):
    __tablename__ = "prices"
    __table_args__ = (
        UniqueConstraint("model", "effective_from"),
        CheckConstraint(
            "input_per_1m >= 0 AND cached_input_per_1m >= 0 AND output_per_1m >= 0", name="non_negative"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256))
    currency: Mapped[str] = mapped_column(String(3))
    input_per_1m: Mapped[Decimal]
    cached_input_per_1m: Mapped[Decimal]
    output_per_1m: Mapped[Decimal]
    effective_from: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]


class UsageEventRow(Base):
    __tablename__ = "usage_events"
    __table_args__ = (
        Index(None, "tenant_id", "started_at"),
        Index(None, "model", "started_at"),
    )

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(256))
    deployment: Mapped[str] = mapped_column(String(256))
    replica: Mapped[str] = mapped_column(String(256))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    cached_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    duration_ms: Mapped[float] = mapped_column(Float)
    price_id: Mapped[int | None] = mapped_column(Integer)


class RollupColumns:
    """What the usage rollups share: the key before the time bucket, and the counts. (sort_order puts
    the key first, then the subclass's time bucket, then the counts, as the migrations made them.)"""

    tenant_id: Mapped[str] = mapped_column(String(32), primary_key=True, sort_order=-1)
    model: Mapped[str] = mapped_column(String(256), primary_key=True, sort_order=-1)
    price_id: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-1)
    requests: Mapped[int] = mapped_column(BigInteger)
    aborted: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)


class UsageHourly(RollupColumns, Base):
    """Per tenant, model, price and UTC hour: written in the same transaction as the events."""

    __tablename__ = "usage_hourly"
    __table_args__ = (Index(None, "hour"),)

    hour: Mapped[datetime] = mapped_column(primary_key=True)


class UsageDaily(RollupColumns, Base):
    """The hourly rollups summed per UTC day, written in the same transaction: what month-long
    reports read (a month is 30 rows per tenant, model and price instead of 720)."""

    __tablename__ = "usage_daily"
    # Covering the usage-by-day charts (over everyone or one model): an index-only scan reads a few
    # narrow entries per row instead of the whole row with its histograms (4 to 8 times faster).
    __table_args__ = (
        Index(
            "ix_usage_daily_by_day",
            "day",
            "model",
            *("requests", "aborted", "failed", "prompt_tokens", "cached_tokens", "completion_tokens"),
        ),
    )

    day: Mapped[datetime] = mapped_column(primary_key=True)


class UsageMonthly(RollupColumns, Base):
    """The daily rollups summed per UTC calendar month, written in the same transaction: what reports
    of whole months read (one row per tenant, model and price instead of ~30)."""

    __tablename__ = "usage_monthly"
    __table_args__ = (Index(None, "month"),)

    month: Mapped[datetime] = mapped_column(primary_key=True)


# Latency histogram columns of the rollups: one count per fixed bucket (see billing/histograms.py).
for _rollup in (UsageHourly, UsageDaily, UsageMonthly):
    for _column in HISTOGRAM_COLUMNS:
        setattr(_rollup, _column, Column(_column, BigInteger, nullable=False, server_default="0"))


class GpuCost(Base):
    """What one GPU of a product costs per hour: append-only history like prices. Amounts are integer
    nano-units of the currency (2.49 USD = 2_490_000_000), exact on SQLite as on PostgreSQL."""

    __tablename__ = "gpu_costs"
    __table_args__ = (
        UniqueConstraint("gpu_product", "effective_from"),
        CheckConstraint("per_hour_nanos >= 0", name="non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gpu_product: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    per_hour_nanos: Mapped[int] = mapped_column(BigInteger)
    effective_from: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]


class ReplicaInterval(Base):
    """One serving interval of one replica: from Ready to not Ready (or gone); ended_at NULL while open.
    A replica's interval is keyed by its start, so reporting the same interval again adds no row."""

    __tablename__ = "replica_intervals"
    __table_args__ = (
        # named here: the convention's name would exceed PostgreSQL's 63 characters
        UniqueConstraint(
            "source", "namespace", "deployment", "replica", "started_at", name="uq_replica_intervals_key"
        ),
        Index(None, "started_at"),
        Index(None, "source", "ended_at"),
        CheckConstraint("gpus >= 0", name="gpus_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))  # who observes it: "kubernetes", "local"
    namespace: Mapped[str] = mapped_column(String(253))
    deployment: Mapped[str] = mapped_column(String(253))
    model: Mapped[str] = mapped_column(String(256))  # the served name usage events carry
    replica: Mapped[str] = mapped_column(String(256))
    gpus: Mapped[int] = mapped_column(Integer)
    gpu_product: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoadColumns:
    """The load an autoscaler reading found, as status.scaling's signals state it (NULL: not read)."""

    demand: Mapped[int | None] = mapped_column(Integer)
    waiting: Mapped[int | None] = mapped_column(Integer)
    running: Mapped[int | None] = mapped_column(Integer)
    gateway_queued: Mapped[int | None] = mapped_column(Integer)
    kv_cache_utilization: Mapped[float | None] = mapped_column(Float)


class ScalingDecisionRow(LoadColumns, Base):
    """One change of a ModelDeployment's replicas by the autoscaler, with the load it was made from:
    append-only, keyed by when it was made, so a decision reported again adds no row."""

    __tablename__ = "scaling_decisions"
    __table_args__ = (
        UniqueConstraint("source", "namespace", "deployment", "decided_at", name="uq_scaling_decisions_key"),
        Index(None, "model", "decided_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str] = mapped_column(String(253))
    deployment: Mapped[str] = mapped_column(String(253))
    model: Mapped[str] = mapped_column(String(256))
    decided_at: Mapped[datetime]
    from_replicas: Mapped[int] = mapped_column(Integer)
    to_replicas: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(1024))


class ScalingObservationRow(LoadColumns, Base):
    """The autoscaler's latest reading of one ModelDeployment (replaced by newer ones): its load now."""

    __tablename__ = "scaling_observations"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(253), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(253), primary_key=True)
    model: Mapped[str] = mapped_column(String(256), index=True)
    observed_at: Mapped[datetime]
    desired_replicas: Mapped[int] = mapped_column(Integer)


class ReplicaBusyHourly(Base):
    """Per model, replica and UTC hour: a bitmap of the minutes with a request in flight (bit m set:
    minute m of the hour). Bitwise OR merges batches in any order, and a replayed batch changes nothing."""

    __tablename__ = "replica_busy_hourly"
    __table_args__ = (Index(None, "hour"),)

    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    replica: Mapped[str] = mapped_column(String(256), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    busy_minutes: Mapped[int] = mapped_column(BigInteger)


class ConsoleSession(Base):
    """A signed-in console browser. The cookie holds a random token; only its keyed hash is stored, so
    a copy of this table opens no session. A tenant's session is tied to the key it signed in with."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        CheckConstraint("role IN ('operator', 'tenant')", name="role"),
        Index(None, "expires_at"),
    )

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(String(32))
    key_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
