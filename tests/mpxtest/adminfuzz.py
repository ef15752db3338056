"""Schema-driven fuzzing of the ledger's admin API: schemathesis reads the API's own OpenAPI (fetched
with the admin token) and sends seeded cases, valid and invalid, to a real server on 127.0.0.1.

Shared by the test suite (a small fixed budget) and `bench/fuzz_admin.py` (a longer one). Every
response is checked: not a server error, and conforming to the schema (status code, content type,
body and headers as documented).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.result import Err
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from modelplex.billing.api.standalone import standalone_app
from modelplex.billing.settings import BillingSettings
from mpxtest.upstream import LoopThread, serve, shutdown

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
SCHEMA_PATH = "/admin/v1/openapi.json"


@dataclass
class Finding:
    operation: str
    status: int
    problem: str
    request: str


@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    server_errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"operations={self.operations} cases={self.cases} responses>=500={self.server_errors} "
            f"nonconforming={len(self.findings)} seconds={self.seconds:.1f} statuses={{{statuses}}}"
        )


@contextmanager
def admin_server(settings: BillingSettings) -> Iterator[str]:
    """`modelplex ledger serve`'s app (it opens and closes the ledger) under uvicorn; its URL."""
    loop = LoopThread()
    try:
        served = loop.run(serve(standalone_app(settings), lifespan="on"))
        try:
            yield served.url
        finally:
            loop.run(shutdown(served), timeout=60)
    finally:
        loop.stop()


def _describe(case: Case[Any]) -> str:
    return f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"[:500]


def _recorder(report: FuzzReport, url: str, headers: dict[str, str]) -> Callable[[Case[Any]], None]:
    def send(case: Case[Any]) -> None:
        response: Response = case.call(base_url=url, headers=headers, timeout=30)
        report.cases += 1
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        report.server_errors += response.status_code >= 500
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as failure:  # one group naming every failed check
            report.findings.append(
                Finding(case.operation.label, response.status_code, str(failure)[:800], _describe(case))
            )

    return send


def fuzz_admin_api(url: str, token: str, cases_per_operation: int, seed: int) -> FuzzReport:
    """Up to `cases_per_operation` valid and as many invalid cases for every operation, seeded."""
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(url + SCHEMA_PATH, headers=headers)
    report = FuzzReport()
    send = _recorder(report, url, headers)
    started = time.monotonic()
    budget = hypothesis.settings(
        max_examples=cases_per_operation,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every case is counted, none re-run
        suppress_health_check=list(HealthCheck),
    )
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        report.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            run = hypothesis.seed(seed)(budget(hypothesis.given(case=strategy)(send)))
            # Unsatisfiable: nothing of this operation can be made invalid (a GET without parameters)
            with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                run()
    report.seconds = time.monotonic() - started
    return report
