"""Writes every manifest generated from one source: the RBAC of deploy/operator/ and deploy/gateway/,
the chart's RBAC rules, the chart's copy of the CRD (crds/ is its source) and the chart's README.

Run `python -m modelplex.manifests.generate` after changing manifests/rbac.py, the CRD or the chart's
values.yaml; `--check` (and a unit test) fails while any file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import modelplex
from modelplex.crds.generate import CRD_PATH
from modelplex.manifests import rbac_render, values_doc
from modelplex.manifests.rbac import GATEWAY, OPERATOR

ROOT = Path(modelplex.__file__).parent
CHART = ROOT / "charts" / "modelplex"
CHART_CRD = CHART / "api" / CRD_PATH.name


def render() -> dict[Path, str]:
    """Every generated file and its text."""
    values = (CHART / "values.yaml").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    return {
        ROOT / "deploy" / "operator" / "rbac.yaml": rbac_render.plain_manifest(OPERATOR),
        ROOT / "deploy" / "gateway" / "rbac.yaml": rbac_render.plain_manifest(GATEWAY),
        CHART / "templates" / "_rbac-rules.tpl": rbac_render.chart_rules_template(),
        CHART_CRD: CRD_PATH.read_text(),
        CHART / "README.md": values_doc.render(values, schema),
    }


def stale() -> list[Path]:
    return [path for path, text in render().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    if "--check" in (argv if argv is not None else sys.argv[1:]):
        found = stale()
        for path in found:
            print(f"{path.relative_to(ROOT)} is stale")
        return 1 if found else 0
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"Wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
