"""deploy/image/Containerfile and the chart agree: the chart's default image is this version, the
image's user is the chart's runAsUser, and every folder the chart mounts writable exists in the image.
(No container engine runs here, so the image itself is not built by the tests.)"""

from __future__ import annotations

import re

import yaml

import modelplex
from modelplex.manifests.generate import CHART, ROOT

CONTAINERFILE = (ROOT / "deploy" / "image" / "Containerfile").read_text()


def test_the_chart_defaults_to_this_version_of_the_image() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == modelplex.__version__
    assert chart["version"] == modelplex.__version__
    assert f":{modelplex.__version__} ." in CONTAINERFILE  # the build command it documents


def test_the_image_runs_as_the_charts_non_root_user() -> None:
    (user,) = re.findall(r"^USER (\S+)$", CONTAINERFILE, re.MULTILINE)
    assert user == "65532:65532"
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert "runAsUser: 65532" in helpers
    assert "runAsGroup: 65532" in helpers
    assert "readOnlyRootFilesystem: true" in helpers
    assert 'ENTRYPOINT ["modelplex"]' in CONTAINERFILE
    assert "PYTHONDONTWRITEBYTECODE=1" in CONTAINERFILE


def test_every_writable_mount_of_the_chart_is_prepared_in_the_image() -> None:
    mounts = set()
    for template in (CHART / "templates").glob("*.yaml"):
        mounts |= set(re.findall(r"mountPath: (/var/lib/modelplex/\w+)", template.read_text()))
    assert mounts == {"/var/lib/modelplex/journal", "/var/lib/modelplex/state", "/var/lib/modelplex/ledger"}
    for mount in mounts:
        assert mount in CONTAINERFILE
