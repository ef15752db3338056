"""The autoscaler's decisions and latest readings in the ledger, on both databases, through the admin
API as the operator reports them: each decision recorded once however often it is reported, the
reading replaced only by a newer one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from modelplex.billing.ledger import Ledger
from modelplex.billing.scaling import decisions_between, readings_of

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
EVER = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def decision(minute: int, before: int, after: int, reason: str = "QueueDepth") -> dict[str, Any]:
    """A decision as status.scaling.decisions holds it."""
    return {
        "time": stamp(T0 + timedelta(minutes=minute)),
        "from": before,
        "to": after,
        "reason": reason,
        "message": f"queue depth {after * 8} over {before} x 8",
        "signals": {"demand": after * 8, "waiting": after * 3, "running": 5, "kvCacheUtilization": 0.5},
    }


def report(minute: int, decisions: list[dict[str, Any]], waiting: int = 4) -> dict[str, Any]:
    at = stamp(T0 + timedelta(minutes=minute))
    return {
        "source": "kubernetes",
        "observedAt": at,
        "ready": [],
        "scaling": [
            {
                "namespace": "prod",
                "deployment": "llama",
                "model": "llama-8b",
                "desiredReplicas": decisions[-1]["to"] if decisions else 1,
                "observedAt": at,
                "signals": {
                    "demand": 9,
                    "waiting": waiting,
                    "running": 5,
                    "kvCacheUtilization": 0.625,
                    "gatewayQueued": 2,
                },
                "decisions": decisions,
            }
        ],
    }


async def test_decisions_are_recorded_once_and_the_newest_reading_kept(
    admin: httpx.AsyncClient, ledger: Ledger
) -> None:
    first = [decision(1, 1, 2), decision(5, 2, 4), decision(9, 4, 3, "ScaleDownStabilizing")]
    put = "/admin/v1/capacity/observations"
    assert (await admin.put(put, json=report(10, first))).json()["decisions"] == 3
    assert (await admin.put(put, json=report(11, first))).json()["decisions"] == 0  # reported again
    # the status keeps the last 20: the oldest falls out of the window, a new one comes in
    later = [*first[1:], decision(12, 3, 1, "Idle")]
    assert (await admin.put(put, json=report(13, later, waiting=0))).json()["decisions"] == 1
    stale = await admin.put(put, json=report(12, first, waiting=40))  # delivered late
    assert stale.json()["decisions"] == 0

    async with ledger.sessions() as session:
        decisions = await decisions_between(session, "llama-8b", *EVER)
        newest = await decisions_between(session, "llama-8b", *EVER, limit=2)
        readings = await readings_of(session, "llama-8b")
        other = await readings_of(session, "qwen")
    assert [(d.decided_at, d.from_replicas, d.to_replicas, d.reason) for d in decisions] == [
        (T0 + timedelta(minutes=12), 3, 1, "Idle"),
        (T0 + timedelta(minutes=9), 4, 3, "ScaleDownStabilizing"),
        (T0 + timedelta(minutes=5), 2, 4, "QueueDepth"),
        (T0 + timedelta(minutes=1), 1, 2, "QueueDepth"),
    ]
    assert (decisions[0].demand, decisions[0].waiting, decisions[0].kv_cache_utilization) == (8, 3, 0.5)
    assert decisions[0].gateway_queued == 0
    assert newest == decisions[:2]
    assert [
        (r.observed_at, r.desired_replicas, r.waiting, r.queue_depth, r.kv_cache_utilization)
        for r in readings
    ] == [(T0 + timedelta(minutes=13), 1, 0, 2, 0.625)]
    assert other == []
    listed = await admin.get(
        "/admin/v1/capacity/scaling-decisions", params={"model": "llama-8b", "period": "2026-05"}
    )
    assert [(d["decidedAt"], d["fromReplicas"], d["toReplicas"]) for d in listed.json()["data"]][:2] == [
        ("2026-05-04T08:12:00Z", 3, 1),
        ("2026-05-04T08:09:00Z", 4, 3),
    ]
    now = (await admin.get("/admin/v1/capacity/scaling-readings", params={"model": "llama-8b"})).json()[
        "data"
    ]
    assert [(r["desiredReplicas"], r["gatewayQueued"], r["kvCacheUtilization"]) for r in now] == [
        (1, 2, 0.625)
    ]


async def test_a_report_without_a_reading_and_bad_signals(admin: httpx.AsyncClient, ledger: Ledger) -> None:
    body = report(10, [decision(1, 0, 1, "ScaleFromZero")])
    body["scaling"][0]["signals"] = None
    response = await admin.put("/admin/v1/capacity/observations", json=body)
    assert response.status_code == 200, response.text
    async with ledger.sessions() as session:
        (reading,) = await readings_of(session, "llama-8b")
    assert (reading.desired_replicas, reading.waiting, reading.queue_depth) == (1, None, None)
    bad = report(11, [decision(2, 1, 2)])
    bad["scaling"][0]["signals"]["kvCacheUtilization"] = 1.5
    refused = await admin.put("/admin/v1/capacity/observations", json=bad)
    assert refused.status_code == 422
    assert "kvCacheUtilization" in refused.text
