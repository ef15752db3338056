"""The secrets canary: no secret a test run creates or is handed shows up in what the run produced.

Secrets are registered as they come into being: every key the ledger issues in this process
(`keystore.new_key`), every pepper the ledger loads, the fixtures' fixed tokens, keys that come back
in responses of ledger processes, and the `key-pepper` files local stacks create. Outputs are
scanned as they appear: each test's captured stdout, stderr and logs (pytest captures logs at
DEBUG, see pyproject.toml), the body of every error response and every `/metrics` scrape httpx
reads; and at the end of the session the files the fixtures `watch` (process logs, journals,
SQLite ledgers, a dump of the session's PostgreSQL). A secret found, raw or base64-, hex- or
url-encoded, fails the session with where it was found.

Only the secret part of a key is registered: its display prefix (`mpx-` and 8 characters) is shown
to users on purpose, and hashed keys are not secrets.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplex.billing import keystore, ledger
from modelplex.billing.key_material import DISPLAY_LENGTH

WINDOW = 8  # every needle is at least this long; candidates are looked up by their first 8 bytes
# Runs of the characters every needle is made of (url-safe and standard base64, hex, %-escapes).
RUN = re.compile(rb"[A-Za-z0-9+/=_%-]{8,}")
MAX_FILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Finding:
    secret: str  # what the secret is (never its value)
    encoding: str
    where: str


def encodings(secret: bytes) -> dict[str, bytes]:
    """The forms a secret can leak in, each as bytes that occur in any text holding that form.

    base64 depends on where in the encoded blob the secret starts: for each of the 3 alignments,
    the characters that only the secret determines."""
    forms = {
        "raw": secret,
        "url-encoded": urllib.parse.quote(secret, safe="").encode(),
        "hex": binascii.hexlify(secret),
        "HEX": binascii.hexlify(secret).upper(),
    }
    for skip in range(3):
        encoded = base64.b64encode(b"\0" * skip + secret)
        middle = encoded[4 if skip else 0 : len(encoded) - 4]
        forms[f"base64/{skip}"] = middle
        forms[f"urlsafe-base64/{skip}"] = middle.replace(b"+", b"-").replace(b"/", b"_")
    distinct: dict[str, bytes] = {}
    for name, form in forms.items():
        if len(form) >= WINDOW and form not in distinct.values():
            distinct[name] = form
    return distinct


@dataclass
class Canary:
    secrets: dict[str, str] = field(default_factory=dict)  # value -> what it is
    _index: dict[bytes, list[tuple[bytes, str, str]]] = field(default_factory=dict)
    watched: dict[Path, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    scanned_bytes: int = 0
    scan_seconds: float = 0.0  # the canary's own cost, reported in the session summary

    def register(self, secret: str, what: str) -> None:
        if not secret or secret in self.secrets:
            return
        raw = secret.encode()
        if len(raw) < WINDOW or RUN.fullmatch(raw) is None:
            raise ValueError(f"canary: {what} must be {WINDOW}+ characters of [A-Za-z0-9_-] to be scanned")
        self.secrets[secret] = what
        for encoding, needle in encodings(raw).items():
            self._index.setdefault(needle[:WINDOW], []).append((needle, what, encoding))

    def watch(self, path: Path, what: str) -> None:
        """Scan PATH (a file, or every file under a folder) at the end of the session."""
        self.watched[path] = what

    def scan(self, data: bytes, where: str) -> list[Finding]:
        began = time.perf_counter()
        found = []
        for run in RUN.finditer(data):
            text = run.group()
            for start in range(len(text) - WINDOW + 1):
                for needle, what, encoding in self._index.get(text[start : start + WINDOW], ()):
                    if text.startswith(needle, start):
                        found.append(Finding(what, encoding, where))
        unique = list(dict.fromkeys(found))
        self.findings.extend(unique)
        self.scanned_bytes += len(data)
        self.scan_seconds += time.perf_counter() - began
        return unique

    def scan_watched(self) -> None:
        for root, what in self.watched.items():
            for path in _files(root):
                if path.name == "key-pepper":
                    continue  # the pepper's own home
                with path.open("rb") as handle:
                    self.scan(handle.read(MAX_FILE_BYTES), f"{what}: {path}")

    def register_pepper_files(self) -> None:
        """Peppers that child processes (local stacks) created in watched folders."""
        for root in self.watched:
            for path in _files(root):
                if path.name == "key-pepper":
                    self.register(path.read_text().strip(), f"the pepper in {path}")


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
    elif root.is_dir():
        yield from (path for path in sorted(root.rglob("*")) if path.is_file())


CANARY = Canary()
KEY = re.compile(rb'"(mpx-[A-Za-z0-9_-]{20,})"')


def register_key(key: str, what: str = "an API key") -> None:
    CANARY.register(key[DISPLAY_LENGTH:], what + " (its secret part)")


def register(secret: str, what: str) -> None:
    CANARY.register(secret, what)


def watch(path: Path, what: str) -> None:
    CANARY.watch(path, what)


def _issuing(new_key: Callable[[], str]) -> Callable[[], str]:
    @functools.wraps(new_key)
    def issue() -> str:
        key = new_key()
        register_key(key, "an API key the ledger issued")
        return key

    return issue


def _loading(load_pepper: Callable[..., bytes]) -> Callable[..., bytes]:
    @functools.wraps(load_pepper)
    def load(*args: Any, **kwargs: Any) -> bytes:
        pepper = load_pepper(*args, **kwargs)
        register(pepper.decode(), "a pepper the ledger loaded")
        return pepper

    return load


def _recorded_response(response: httpx.Response) -> None:
    try:
        request = response.request
    except RuntimeError:  # a Response a test built by hand: nothing was served
        return
    content = response.content
    if response.status_code in (200, 201):
        for key in KEY.findall(content):
            register_key(key.decode(), f"an API key returned by {request.url.path}")
    if response.status_code >= 400 or request.url.path.endswith("/metrics"):
        CANARY.scan(content, f"{response.status_code} response to {request.method} {request.url}")


def _reading(read: Callable[[httpx.Response], bytes]) -> Callable[[httpx.Response], bytes]:
    @functools.wraps(read)
    def read_and_scan(response: httpx.Response) -> bytes:
        content = read(response)
        _recorded_response(response)
        return content

    return read_and_scan


def _areading(aread: Callable[[httpx.Response], Any]) -> Callable[[httpx.Response], Any]:
    @functools.wraps(aread)
    async def aread_and_scan(response: httpx.Response) -> bytes:
        content: bytes = await aread(response)
        _recorded_response(response)
        return content

    return aread_and_scan


_PATCHES: list[tuple[Any, str, Any]] = []


def _patch(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    original = getattr(owner, name)
    _PATCHES.append((owner, name, original))
    setattr(owner, name, wrap(original))


def pytest_configure(config: pytest.Config) -> None:
    _patch(keystore, "new_key", _issuing)
    _patch(ledger, "load_pepper", _loading)
    _patch(httpx.Response, "read", _reading)
    _patch(httpx.Response, "aread", _areading)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _PATCHES:
        owner, name, original = _PATCHES.pop()
        setattr(owner, name, original)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for title, text in report.sections:
        CANARY.scan(text.encode(errors="replace"), f"{title} of {report.nodeid}")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    CANARY.register_pepper_files()
    CANARY.scan_watched()
    if CANARY.findings and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    findings = list(dict.fromkeys(CANARY.findings))
    files = sum(1 for root in CANARY.watched for _ in _files(root))
    terminalreporter.write_line(
        f"secrets canary: {len(CANARY.secrets)} secrets, {files} files watched, "
        f"{CANARY.scanned_bytes / 1e6:.1f} MB scanned in {CANARY.scan_seconds:.1f} s, {len(findings)} found"
    )
    for finding in _first(findings, 50):
        terminalreporter.write_line(
            f"  SECRET FOUND: {finding.secret} ({finding.encoding}) in {finding.where}", red=True
        )


def _first(items: Iterable[Finding], count: int) -> list[Finding]:
    return list(items)[:count]
