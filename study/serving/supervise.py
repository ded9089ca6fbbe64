"""Run a server as a child process and stop all of it: the one place that supervises a process tree.

`mlflow server` starts uvicorn, a job runner and its huey consumers. Killing only the process we started
leaves those running and holding the port, so the
child gets a process group of its own, and SIGTERM or SIGINT to us ends that whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from seedvar.errors import UserError

HOST = "127.0.0.1"  # `seedvar ui` and `seedvar server` listen on loopback unless --host says otherwise
PORT = 5000
SERVER_WORKERS = 2  # `seedvar server`'s worker processes

GRACE_SECONDS = 10.0  # how long the group may take to stop after SIGTERM before it is killed


class Stopped(Exception):
    """Raised in the main thread when SIGTERM or SIGINT arrives while a child is supervised."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP GET of url succeeds: a server's readiness probe."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


def supervise(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    ready: Callable[[], bool] | None = None,
    on_ready: Callable[[], None] | None = None,
    poll_seconds: float = 0.5,
    grace: float = GRACE_SECONDS,
) -> int:
    """Run `cmd` in its own process group until it exits or this process gets SIGTERM or SIGINT.

    Either way the whole group is stopped (SIGTERM, then SIGKILL after `grace` seconds), so no grandchild
    keeps a port. `ready` is polled until it first returns True, then `on_ready` runs once. Returns 0
    when stopped by a signal, else the child's exit status.
    """
    proc: subprocess.Popen | None = None
    with _stop_signals() as stopping:
        try:
            proc = subprocess.Popen(
                list(cmd), env=dict(env) if env is not None else None, start_new_session=True
            )
            waiting = ready is not None
            while True:
                try:
                    code = proc.wait(timeout=poll_seconds if waiting else None)
                    break
                except subprocess.TimeoutExpired:
                    if waiting and ready is not None and ready():
                        waiting = False
                        if on_ready is not None:
                            on_ready()
        except Stopped:
            code = 0
        finally:
            stopping.set()  # a second Ctrl-C must not cut the stopping short
            if proc is not None:
                stop_group(proc.pid, grace)
    return code


def stop_group(pgid: int, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every process of a group, wait until all are gone, SIGKILL whatever is left after grace."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-pgid, os.WNOHANG)[0]:  # reap our own child: a zombie still counts
                    pass
            if not group_members(pgid):
                return
            time.sleep(0.1)


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc; where there is no /proc, any
    process the kernel still counts in the group."""
    proc = "/proc"
    if not os.path.isdir(proc):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "pid (command)": state ppid pgrp ...
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


class _Flag:
    def __init__(self) -> None:
        self.on = False

    def set(self) -> None:
        self.on = True


@contextlib.contextmanager
def _stop_signals() -> Iterator[_Flag]:
    """SIGTERM and SIGINT raise Stopped in the main thread while a child is supervised, until the
    stopping begins (then they are ignored: the group is being stopped already)."""
    stopping = _Flag()

    def handler(signum: int, frame: object) -> None:
        if not stopping.on:
            stopping.set()
            raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stopping
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def require_port(host: str, port: int) -> None:
    """A busy port is the user's to fix: one line before anything starts."""
    if not port_free(host, port):
        raise UserError(f"port {port} on {host} is in use: stop what holds it or pick another with --port")


def python_module(module: str, *args: str) -> list[str]:
    """A command line that runs a module of this interpreter (the one seedvar was installed into)."""
    return [sys.executable, "-m", module, *args]
