"""Usage queries on both databases: by tenant, model, hour, day, total; unknown names are 4xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelplex.billing import tenants
from modelplex.billing.errors import InvalidInput, NotFound
from modelplex.billing.ingest import LedgerSink
from modelplex.billing.ledger import Ledger
from modelplex.billing.usage import usage_report
from mpxtest.ledger import usage_event

pytestmark = pytest.mark.anyio
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)


async def _load(ledger: Ledger) -> None:
    acme = (await tenants.create_tenant(ledger, "acme")).id
    beta = (await tenants.create_tenant(ledger, "beta")).id
    day = datetime(2026, 3, 10, 9, tzinfo=UTC)
    await LedgerSink(ledger).ingest(
        [
            usage_event("a1", tenant_id=acme, at=day, prompt=10, completion=1),
            usage_event("a2", tenant_id=acme, at=day + timedelta(hours=2), prompt=20, completion=2),
            usage_event("a3", tenant_id=acme, at=day + timedelta(days=1), prompt=30, completion=3),
            usage_event("a4", tenant_id=acme, at=day, model="m2", prompt=40, completion=4),
            usage_event("b1", tenant_id=beta, at=day, prompt=50, completion=5),
            usage_event("late", tenant_id=acme, at=END, prompt=60, completion=6),
        ]
    )


async def test_totals_by_tenant_and_model(ledger: Ledger) -> None:
    await _load(ledger)
    rows = await usage_report(ledger, START, END)
    assert [(r.tenant, r.model, r.requests, r.prompt_tokens) for r in rows] == [
        ("acme", "m1", 3, 60),
        ("acme", "m2", 1, 40),
        ("beta", "m1", 1, 50),
    ]


async def test_by_day_and_hour_for_one_tenant_and_model(ledger: Ledger) -> None:
    await _load(ledger)
    days = await usage_report(ledger, START, END, tenant="acme", model="m1", granularity="day")
    assert [(r.bucket, r.requests, r.completion_tokens) for r in days] == [
        (datetime(2026, 3, 10, tzinfo=UTC), 2, 3),
        (datetime(2026, 3, 11, tzinfo=UTC), 1, 3),
    ]
    hours = await usage_report(ledger, START, END, tenant="acme", model="m1", granularity="hour")
    assert [r.bucket.hour for r in hours if r.bucket] == [9, 11, 9]


async def test_unknown_tenant_or_model_and_empty_ranges_are_rejected(ledger: Ledger) -> None:
    await _load(ledger)
    with pytest.raises(NotFound) as tenant:
        await usage_report(ledger, START, END, tenant="nobody")
    assert tenant.value.param == "tenant"
    with pytest.raises(NotFound) as model:
        await usage_report(ledger, START, END, model="no-such-model")
    assert model.value.param == "model"
    with pytest.raises(InvalidInput) as backwards:
        await usage_report(ledger, END, START)
    assert backwards.value.param == "end"
