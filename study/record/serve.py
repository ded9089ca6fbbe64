"""Run a server process (MLflow's) until SIGTERM or Ctrl-C, then stop its whole process tree.

`mlflow server` starts uvicorn workers of its own: signalling only the first process leaves them
holding the port. The child gets its own process group, and a stop goes to the whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator

from study.errors import UserError


class _Stop(Exception):
    """SIGTERM or SIGINT arrived."""


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    def stop(signum: int, frame: object) -> None:
        raise _Stop

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to the child's whole process group, SIGKILL to what is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)  # anyone left in the group?
            except ProcessLookupError:
                proc.wait()
                return
            proc.poll()
            time.sleep(0.1)
    proc.wait()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def supervise(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    health: str,
    on_ready: Callable[[], None],
    name: str,
    port: int,
    start_timeout: float = 180.0,
) -> int:
    """Start `cmd` in a new process group; once `health` answers, call on_ready; serve until a signal.

    Returns 0 after a requested stop; a child that exits on its own is a one-line error (busy port, bad
    store) with its exit status.
    """
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        with _stop_on_signals():
            deadline = time.monotonic() + start_timeout
            while not healthy(health):
                if proc.poll() is not None:
                    raise UserError(
                        f"{name} exited with status {proc.returncode} before it was ready: is port {port} "
                        "free (try --port) and the store reachable?"
                    )
                if time.monotonic() > deadline:
                    raise UserError(f"{name} did not answer {health} within {start_timeout:.0f} s")
                time.sleep(0.3)
            on_ready()
            code = proc.wait()
            raise UserError(f"{name} exited with status {code}; its output above says why")
    except _Stop:
        stop_group(proc)
        print(f"{name} stopped", flush=True)
        return 0
    finally:
        if proc.poll() is None:
            stop_group(proc)
