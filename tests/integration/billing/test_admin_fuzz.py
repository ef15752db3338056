"""Schema-driven fuzzing of the admin API from its own OpenAPI, on SQLite and PostgreSQL: a fixed,
seeded budget of valid and invalid cases per operation; no response >= 500, every response as the
schema documents it. `bench/fuzz_admin.py` runs a longer budget."""

from __future__ import annotations

from modelplex.billing.settings import BillingSettings
from mpxtest.adminfuzz import admin_server, fuzz_admin_api
from mpxtest.ledger import ADMIN_TOKEN

CASES_PER_OPERATION = 40
SEED = 20260312


def test_fuzzed_admin_requests_get_no_server_error_and_conform_to_the_schema(
    billing_settings: BillingSettings,
) -> None:
    with admin_server(billing_settings) as url:
        report = fuzz_admin_api(url, ADMIN_TOKEN, CASES_PER_OPERATION, SEED)
    assert report.operations >= 12, report.summary()
    assert report.cases >= report.operations * CASES_PER_OPERATION, report.summary()
    assert report.server_errors == 0, report.summary()
    assert report.findings == [], "\n".join(
        f"{f.operation}: {f.request}\n{f.problem}" for f in report.findings
    )
    assert {200, 404, 422} <= set(report.statuses), report.summary()  # valid cases got through, too
