"""The secrets canary finds a planted secret in every form it looks for, and nothing else."""

from __future__ import annotations

import base64
import binascii
import subprocess
import sys
import textwrap
import urllib.parse
from pathlib import Path

import httpx
import pytest

from modelplex.billing import keystore
from modelplex.billing.key_material import DISPLAY_LENGTH
from mpxtest import canary as canary_plugin
from mpxtest.canary import Canary, Finding

SECRET = "Zk3v_9QpLm-2xYtR8sWnE4uBcD7hJ0aF"
ESCAPED = "ab+cd/efGH==ijKLmn+op/qr"  # a secret whose url-encoded form differs from it


@pytest.fixture
def canary() -> Canary:
    found = Canary()
    found.register(SECRET, "a planted key")
    found.register(ESCAPED, "a planted key")
    return found


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (f"level=DEBUG logger=x key={SECRET} ok", "raw"),
        (f"Authorization: Bearer {SECRET}\n", "raw"),
        (f"q={urllib.parse.quote(ESCAPED, safe='')}&", "url-encoded"),
        (f"h={binascii.hexlify(SECRET.encode()).decode()}", "hex"),
        (f"H={binascii.hexlify(SECRET.encode()).decode().upper()}", "HEX"),
        ("b=" + base64.b64encode(SECRET.encode()).decode(), "base64/0"),
        ("b=" + base64.b64encode(b"user:" + SECRET.encode()).decode(), "base64/2"),
        ("b=" + base64.b64encode(b"{'k': '" + SECRET.encode() + b"'}").decode(), "base64/1"),
    ],
)
def test_a_planted_secret_is_found_in_each_encoding(canary: Canary, text: str, encoding: str) -> None:
    found = canary.scan(text.encode(), "a log line")
    assert Finding("a planted key", encoding, "a log line") in found
    assert canary.findings == found


def test_text_without_the_secret_is_clean(canary: Canary) -> None:
    near = SECRET[:-1] + "X"
    text = f"key={near} prefix={SECRET[:12]} hash={binascii.hexlify(b'other').decode()}"
    assert canary.scan(text.encode(), "a log line") == []


def test_watched_files_are_scanned_and_named(canary: Canary, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "clean.log").write_text("nothing here\n")
    (logs / "gateway.log").write_bytes(b"\x00\x01binary\xff " + SECRET.encode() + b" more\n")
    (logs / "key-pepper").write_text(SECRET)  # a secret's own home is not a leak
    canary.watch(logs, "a gateway's log")
    canary.scan_watched()
    assert canary.findings == [Finding("a planted key", "raw", f"a gateway's log: {logs / 'gateway.log'}")]


def test_a_pepper_file_in_a_watched_folder_is_registered(tmp_path: Path) -> None:
    found = Canary()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "key-pepper").write_text("pepper-made-by-a-child-process\n")
    (tmp_path / "journal").write_text("pepper-made-by-a-child-process")
    found.watch(tmp_path, "a stack's state")
    found.register_pepper_files()
    found.scan_watched()
    assert [finding.where for finding in found.findings] == [f"a stack's state: {tmp_path / 'journal'}"]


def test_a_secret_the_scanner_cannot_see_is_refused() -> None:
    with pytest.raises(ValueError, match="8\\+ characters"):
        Canary().register("short", "a short token")
    with pytest.raises(ValueError, match="8\\+ characters"):
        Canary().register("has spaces in it", "a phrase")


def test_a_session_that_leaks_fails_naming_the_file(tmp_path: Path) -> None:
    """The whole plugin in a pytest run of its own: a test writes a registered secret into a watched
    log; every test passes, and the session still fails, naming the log."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["mpxtest.canary"]\n')
    (tmp_path / "test_leak.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from mpxtest import canary

            def test_leaks(tmp_path: Path) -> None:
                log = tmp_path / "component.log"
                canary.register("{SECRET}", "a planted key")
                canary.watch(log, "a component's log")
                log.write_text("level=DEBUG token={SECRET}\\n")
            """
        )
    )
    tests = str(Path(__file__).resolve().parents[1])
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": tests, "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "SECRET FOUND: a planted key (raw) in a component's log: " in run.stdout
    assert "component.log" in run.stdout


def test_error_bodies_and_metrics_that_httpx_reads_are_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Canary()
    monkeypatch.setattr(canary_plugin, "CANARY", fresh)
    issued = "mpx-" + SECRET
    pages = {
        "/keys": (201, f'{{"key": "{issued}"}}'),
        "/refused": (401, f"bad token {issued}"),
        "/metrics": (200, f'requests_total{{key="{issued}"}} 1'),
        "/fine": (200, f"a body holding {issued} is not scanned"),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        status, body = pages[request.url.path]
        return httpx.Response(status, text=body)

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://gateway") as client:
        for path in pages:
            client.get(path)
    assert fresh.secrets == {SECRET[8:]: "an API key returned by /keys (its secret part)"}
    assert [finding.where for finding in fresh.findings] == [
        "401 response to GET http://gateway/refused",
        "200 response to GET http://gateway/metrics",
    ]


def test_every_key_the_ledger_issues_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Canary()
    monkeypatch.setattr(canary_plugin, "CANARY", fresh)
    key: str = vars(keystore)["new_key"]()  # as keystore.create_key calls it: wrapped for the session
    assert list(fresh.secrets) == [key[DISPLAY_LENGTH:]]
