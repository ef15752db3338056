"""Start and stop long-running processes, each in its own process group with its own log."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the test process dies hard (SIGKILL), the
    # kernel kills the child too, so no component outlives the session that started it.
    # SIGKILL, not SIGTERM: kube-apiserver and etcd take far too long to drain for a test cluster.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Component:
    name: str
    pid: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    argv: tuple[str, ...] = ()  # how it was started (empty when only its pid is known)
    env: dict[str, str] | None = None

    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return pid_alive(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    tied_to_parent: bool = True,
) -> Component:
    """Start a process in a new session (its own process group), logging to log_dir/NAME.log."""
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=_die_with_parent if tied_to_parent else None,
        )
    return Component(name=name, pid=process.pid, log=log, process=process, argv=tuple(argv), env=env)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop(components: Sequence[Component], grace_seconds: float = 10.0) -> None:
    """SIGTERM every group (newest first), then SIGKILL whatever of a group is left after the grace.

    A whole group, not just its leader: engines fork helpers (vLLM's engine core and workers) that
    may outlive their parent by a moment, or for good if nothing kills them.
    """
    for component in reversed(components):
        _signal_group(component.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for component in components:
        while group_members(component.pid) and time.monotonic() < deadline:
            if component.process is not None:
                component.process.poll()  # reap the leader, so it does not linger as a zombie
            time.sleep(0.05)
        if group_members(component.pid):
            _signal_group(component.pid, signal.SIGKILL)
        if component.process is not None:
            component.process.wait(timeout=grace_seconds)
        wait_group_gone(component.pid, grace_seconds)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


class StartupError(RuntimeError):
    """A component did not become ready; the message names it and quotes its log."""


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    watched: Sequence[Component] = (),
) -> None:
    """Poll `check` until it is true; fail fast, with the log, when a watched process exits."""
    deadline = time.monotonic() + timeout
    while True:
        for component in watched:
            if not component.running():
                raise StartupError(
                    f"{component.name} exited while waiting for {what}; last log lines "
                    f"({component.log}):\n{component.log_tail()}"
                )
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {c.name} ({c.log}):\n{c.log_tail()}" for c in watched)
            raise StartupError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(0.2)
