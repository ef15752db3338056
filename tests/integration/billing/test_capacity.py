"""The capacity ledger and GPU costs on both databases: idempotent interval recording, intervals
closed from observed state after a restart, late reports ignored; the admin API and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from modelplex.billing.capacity import (
    CONTINUOUS,
    IntervalRecord,
    Observation,
    ReadyReplica,
    list_intervals,
    record_observation,
)
from modelplex.billing.ledger import Ledger
from modelplex.cli import main
from mpxtest.ledger import PEPPER

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
EVER = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def replica(name: str, since: datetime = T0) -> ReadyReplica:
    return ReadyReplica(
        namespace="prod",
        deployment="llama",
        model="llama-8b",
        replica=name,
        gpus=1,
        gpu_product="NVIDIA-L4",
        ready_since=since,
    )


async def observe(ledger: Ledger, at: datetime, *ready: ReadyReplica, source: str = "kubernetes") -> None:
    await record_observation(ledger, Observation(source=source, observed_at=at, ready=list(ready)))


async def intervals(ledger: Ledger) -> list[tuple[str, datetime, datetime | None]]:
    rows: list[IntervalRecord] = await list_intervals(ledger, *EVER)
    return [(row.replica, row.started_at, row.ended_at) for row in rows]


async def test_the_same_interval_reported_twice_is_one_row(ledger: Ledger) -> None:
    report = Observation(source="kubernetes", observed_at=T0, ready=[replica("a"), replica("b")])
    first = await record_observation(ledger, report)
    again = await record_observation(ledger, report)
    assert (first.opened, again.opened, again.open) == (2, 0, 2)
    later = Observation(source="kubernetes", observed_at=T0 + timedelta(minutes=1), ready=[replica("a")])
    await record_observation(ledger, later)
    await record_observation(ledger, later)
    assert await intervals(ledger) == [("a", T0, None), ("b", T0, T0 + timedelta(minutes=1))]


async def test_a_restarted_producer_closes_what_it_no_longer_sees_when_last_seen(ledger: Ledger) -> None:
    await observe(ledger, T0, replica("a"), replica("b"))
    await observe(ledger, T0 + timedelta(minutes=1), replica("a"), replica("b"))
    # the producer was away for an hour; when it is back, only "a" is Ready (still the same pod)
    back = T0 + timedelta(hours=1)
    await observe(ledger, back, replica("a"))
    assert await intervals(ledger) == [("a", T0, None), ("b", T0, T0 + timedelta(minutes=1))]
    # "a" became Ready anew (restarted) while unobserved: the old interval ends, a new one starts
    restarted = back + CONTINUOUS / 2
    await observe(ledger, back + CONTINUOUS, replica("a", since=restarted))
    assert await intervals(ledger) == [
        ("a", T0, restarted),
        ("b", T0, T0 + timedelta(minutes=1)),
        ("a", restarted, None),
    ]


async def test_a_late_report_changes_nothing_and_sources_are_apart(ledger: Ledger) -> None:
    await observe(ledger, T0, replica("a"))
    await observe(ledger, T0 + timedelta(minutes=1))  # "a" gone
    await observe(ledger, T0 + timedelta(seconds=30), replica("a"))  # delivered late
    await observe(ledger, T0 + timedelta(minutes=2), replica("x"), source="local")
    assert await intervals(ledger) == [("a", T0, T0 + timedelta(minutes=1)), ("x", T0, None)]


async def test_capacity_and_costs_over_the_admin_api(admin: httpx.AsyncClient) -> None:
    body = {
        "source": "kubernetes",
        "observedAt": "2026-05-04T09:00:00Z",
        "ready": [
            {
                "namespace": "prod",
                "deployment": "llama",
                "model": "llama-8b",
                "replica": "llama-abc",
                "gpus": 2,
                "gpuProduct": "NVIDIA-L4",
                "readySince": "2026-05-04T08:00:00Z",
            }
        ],
    }
    response = await admin.put("/admin/v1/capacity/observations", json=body)
    assert response.json() == {
        "opened": 1,
        "closed": 0,
        "open": 1,
        "stale": False,
        "decisions": 0,
        "prices": 0,
    }
    listed = (await admin.get("/admin/v1/capacity/intervals", params={"period": "2026-05"})).json()
    assert [(i["replica"], i["gpus"], i["startedAt"]) for i in listed["data"]] == [
        ("llama-abc", 2, "2026-05-04T08:00:00Z")
    ]
    bad = {**body, "ready": [{**body["ready"][0], "gpus": -1}]}  # type: ignore[dict-item]
    assert (await admin.put("/admin/v1/capacity/observations", json=bad)).status_code == 422

    cost = {"gpuProduct": "NVIDIA-L4", "perHour": "0.8", "effectiveFrom": "2026-05-01T00:00:00Z"}
    created = await admin.post("/admin/v1/gpu-costs", json=cost)
    assert created.status_code == 201
    assert created.json()["perHour"] == "0.8"
    assert (await admin.post("/admin/v1/gpu-costs", json=cost)).json()["error"]["param"] == "effectiveFrom"
    too_fine = await admin.post("/admin/v1/gpu-costs", json={**cost, "perHour": "0.0000000001"})
    assert (too_fine.status_code, too_fine.json()["error"]["param"]) == (422, "perHour")
    history = (await admin.get("/admin/v1/gpu-costs", params={"gpuProduct": "NVIDIA-L4"})).json()
    assert [entry["perHour"] for entry in history["data"]] == ["0.8"]


async def test_prices_declared_by_model_deployments_become_price_history_once(
    admin: httpx.AsyncClient,
) -> None:
    """What the operator reports of each ModelDeployment's spec.pricing: a row when it differs from the
    price in force, none when reported again; a late report's price is not taken; a bad one is left
    out without holding back the others."""
    put = "/admin/v1/capacity/observations"

    def declared(model: str, output: str, name: str = "llama") -> dict[str, object]:
        terms = {"inputPer1M": "0.20", "outputPer1M": output}
        return {"model": model, "source": f"ModelDeployment prod/{name}", "pricing": terms}

    serving = {
        "namespace": "prod",
        "deployment": "llama",
        "model": "llama-8b",
        "replica": "llama-abc",
        "gpus": 1,
        "gpuProduct": "NVIDIA-L4",
        "readySince": "2026-05-04T08:00:00Z",
    }

    def report(at: str, *prices: dict[str, object]) -> dict[str, object]:
        return {"source": "kubernetes", "observedAt": at, "ready": [serving], "prices": list(prices)}

    first = await admin.put(put, json=report("2026-05-04T09:00:00Z", declared("llama-8b", "0.60")))
    assert first.json()["prices"] == 1
    again = await admin.put(put, json=report("2026-05-04T09:00:30Z", declared("llama-8b", "0.60")))
    assert again.json()["prices"] == 0
    late = await admin.put(put, json=report("2026-05-04T08:59:00Z", declared("llama-8b", "0.90")))
    assert (late.json()["stale"], late.json()["prices"]) == (True, 0)
    changed = await admin.put(
        put,
        json=report(
            "2026-05-04T09:01:00Z",
            declared("llama-8b", "0.75"),
            declared("mistral", "-1", name="mistral"),  # refused by the ledger's own validation
        ),
    )
    assert changed.json()["prices"] == 1
    history = (await admin.get("/admin/v1/prices", params={"model": "llama-8b"})).json()["data"]
    assert [(row["outputPer1M"], row["source"]) for row in history] == [
        ("0.6", "ModelDeployment prod/llama"),
        ("0.75", "ModelDeployment prod/llama"),
    ]
    assert (await admin.get("/admin/v1/prices", params={"model": "mistral"})).status_code == 404


def test_costs_and_capacity_from_the_command_line(ledger_url: str, tmp_path: Path) -> None:
    env = {
        "MODELPLEX_DATABASE_URL": ledger_url,
        "MODELPLEX_BILLING_STATE_DIR": str(tmp_path / "state"),
        "MODELPLEX_BILLING_KEY_PEPPER": PEPPER,
    }

    def cli(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.output

    code, output = cli("costs", "set", "--gpu-product", "NVIDIA-H100-80GB-HBM3", "--per-hour", "2.49")
    assert code == 0, output
    assert "per_hour=2.49 USD" in output
    code, output = cli("costs", "list", "--json")
    assert [(c["gpuProduct"], c["perHour"]) for c in json.loads(output)] == [
        ("NVIDIA-H100-80GB-HBM3", "2.49")
    ]
    code, output = cli("costs", "set", "--gpu-product", "x", "--per-hour", "-1")
    assert code != 0
    assert "--per-hour" in output
    code, output = cli("capacity", "report", "--period", "2026-05", "--json")
    assert code == 0, output
    assert json.loads(output)["total"]["gpuHours"] == "0.000000"
    code, output = cli("capacity", "report", "--since", "2026-05-01T00:30:00")
    assert code != 0
    assert "--since" in output
