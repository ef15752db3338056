"""A ledger seeded as a month of a small service looks, for the console's tests: three tenants (one
with a plan, budgets and SLOs), two priced models and one unpriced, GPU costs, replica intervals and
usage metered through the real ingest. Times are this month's, so "today" and budgets have data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import func, select

from modelplex.billing.capacity import Observation, ReadyReplica, record_observation
from modelplex.billing.contracts import Outcome
from modelplex.billing.gpu_costs import set_cost
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.keystore import create_key
from modelplex.billing.ledger import Ledger
from modelplex.billing.periods import Period, hour_of, month_of, utcnow
from modelplex.billing.price_history import PriceTerms, set_price
from modelplex.billing.scaling import ScalingReport
from modelplex.billing.tables import UsageEventRow
from modelplex.billing.tenants import PlanSpec, create_tenant, put_plan
from mpxtest.ledger import ADMIN_TOKEN, usage_event

TENANTS = ("acme", "globex", "initech")  # initech has no usage: pages must still list it
H100 = "NVIDIA-H100-80GB-HBM3"


@dataclass
class Seeded:
    period: Period  # this month
    previous: Period  # last month, which has usage on every day
    keys: dict[str, str] = field(default_factory=dict)  # tenant -> plaintext API key
    key_ids: dict[str, str] = field(default_factory=dict)
    tenant_ids: dict[str, str] = field(default_factory=dict)


def _moments(since: datetime, now: datetime, count: int) -> list[datetime]:
    """`count` instants spread from `since` up to the start of this hour (never in the future)."""
    span = max(hour_of(now) - since, timedelta(hours=1))
    return [since + span * index / count for index in range(count)]


async def seed_console_ledger(ledger: Ledger) -> Seeded:
    now = utcnow()
    period = month_of(now)
    previous = month_of(period.start - timedelta(days=1))
    seeded = Seeded(period=period, previous=previous)
    await put_plan(
        ledger,
        PlanSpec(
            name="pro",
            monthly_token_budget=2_000_000,
            monthly_spend_budget="50",
            slo_ttft_p95_ms=500,
            slo_availability_percent="99.5",
        ),
    )
    for name in TENANTS:
        record = await create_tenant(ledger, name, "pro" if name == "acme" else None)
        created = await create_key(ledger, name, "console")
        seeded.tenant_ids[name] = record.id
        seeded.keys[name] = created.plaintext
        seeded.key_ids[name] = created.key.id
    since = previous.start - timedelta(days=1)
    terms = PriceTerms.model_validate(
        {"inputPer1M": "0.50", "outputPer1M": "1.50", "cachedInputPer1M": "0.25"}
    )
    await set_price(ledger, "llama-70b", terms, since)
    await set_price(
        ledger, "smollm2", PriceTerms.model_validate({"inputPer1M": "0.05", "outputPer1M": "0.10"}), since
    )
    await set_cost(ledger, H100, "2.49", effective_from=since)
    events = []
    for index, at in enumerate(_moments(previous.start, now, 400)):
        tenant = "acme" if index % 5 < 3 else "globex"
        model = ("llama-70b", "smollm2", "unpriced-model")[index % 3] if tenant == "acme" else "llama-70b"
        outcome = Outcome.FAILED if index % 37 == 0 else Outcome.COMPLETED
        events.append(
            usage_event(
                f"req-{index}",
                tenant_id=seeded.tenant_ids[tenant],
                model=model,
                at=at,
                prompt=20_000 + 997 * (index % 41),
                cached=1000 * (index % 4),
                completion=2_000 + 131 * (index % 29),
                outcome=outcome,
            )
        )
    assert await LedgerSink(ledger).ingest(events) == len(events)
    started = previous.start + timedelta(minutes=5)
    replica = ReadyReplica(
        namespace="serving",
        deployment="llama-70b",
        model="llama-70b",
        replica="llama-70b-0",
        gpus=2,
        gpu_product=H100,
        ready_since=started,
    )
    await record_observation(
        ledger,
        Observation(
            source="kubernetes", observed_at=hour_of(now), ready=[replica], scaling=[scaling_report(started)]
        ),
    )
    return seeded


DECIDED_DAYS = (4, 11, 20)  # after the replica started: two decisions, then the last reading


def scaling_report(started: datetime) -> ScalingReport:
    """The autoscaler of llama-70b: two decisions since `started`, and its last reading."""
    signals = {"demand": 20, "waiting": 7, "running": 13, "kvCacheUtilization": 0.75, "gatewayQueued": 2}
    return ScalingReport.model_validate(
        {
            "namespace": "serving",
            "deployment": "llama-70b",
            "model": "llama-70b",
            "desiredReplicas": 2,
            "observedAt": started + timedelta(days=DECIDED_DAYS[2]),
            "signals": signals,
            "decisions": [
                {
                    "time": started + timedelta(days=DECIDED_DAYS[0]),
                    "from": 1,
                    "to": 3,
                    "reason": "QueueDepth",
                    "message": "queue depth 24 over 1 x 8",
                    "signals": {**signals, "demand": 24},
                },
                {
                    "time": started + timedelta(days=DECIDED_DAYS[1]),
                    "from": 3,
                    "to": 2,
                    "reason": "ScaleDownStabilizing",
                    "message": "stabilised at 2 over 300 s",
                },
            ],
        }
    )


async def raw_totals(ledger: Ledger, tenant_id: str, period: Period) -> dict[str, int]:
    """Sums straight over the raw usage rows: what every console total must agree with."""
    row = UsageEventRow
    query = select(
        func.count(),
        func.sum(row.prompt_tokens),
        func.sum(row.cached_tokens),
        func.sum(row.completion_tokens),
    ).where(row.tenant_id == tenant_id, row.started_at >= period.start, row.started_at < period.end)
    async with ledger.sessions() as session:
        count, prompt, cached, completion = (await session.execute(query)).one()
    return {
        "requests": int(count),
        "prompt": int(prompt or 0),
        "cached": int(cached or 0),
        "completion": int(completion or 0),
    }


async def sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    """Sign in as a browser would: fetch the form (its CSRF cookie), post it back with the secret."""
    form = await client.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    return await client.post("/admin/login", data={"csrf": csrf.group(1), "secret": secret, "next": ""})


def money(value: str) -> Decimal:
    return Decimal(value)


OPERATOR_SECRET = ADMIN_TOKEN
