"""A throwaway PostgreSQL cluster on a free loopback port, for the server tests and benchmarks.

Debian's PostgreSQL binaries live in /usr/lib/postgresql/<version>/bin (not on PATH); `initdb` refuses to
run as root, so as root the cluster belongs to the `postgres` user. Nothing here is used by seedvar
itself: users point `seedvar server --backend-store-uri` at their own database.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """initdb + pg_ctl start in a new temporary folder; `uri(db)` for SQLAlchemy (psycopg 3); stop() removes it.

    The folder is made under the system temp dir, not under pytest's: the `postgres` user must be able
    to reach it, and pytest's own folders are private to root.
    """

    def __init__(self) -> None:
        bins = bin_dir()
        if bins is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        folder = Path(tempfile.mkdtemp(prefix="seedvar-pg-"))
        self.bins, self.folder, self.port = bins, folder, free_port()
        self.data = folder / "pgdata"
        self.sockets = folder / "sockets"
        self.as_postgres = os.geteuid() == 0  # initdb refuses root
        folder.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.as_postgres:
            shutil.chown(folder, "postgres")
            shutil.chown(self.sockets, "postgres")

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        done = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr.strip()[-500:]}"
            )

    def start(self) -> Cluster:
        self._run(
            str(self.bins / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bins / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        return self

    def create_db(self, name: str) -> str:
        """A new database; returns its SQLAlchemy URI."""
        self._run(
            str(self.bins / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name
        )
        return self.uri(name)

    def uri(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Stop the cluster and delete its folder."""
        for _ in range(3):
            try:
                self._run(str(self.bins / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
                break
            except RuntimeError:
                time.sleep(0.5)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def seedvar_server(folder: Path, workers: int | None = None) -> Iterator[str]:
    """A throwaway cluster with `seedvar server` on it (artifacts under folder): yields its URL, then
    stops the server (SIGTERM, its whole tree) and removes the cluster."""
    cluster = Cluster().start()
    proc = None
    try:
        port = free_port()
        log = (folder / "server.log").open("w")
        cmd = [sys.executable, "-m", "seedvar", "server", "--backend-store-uri", cluster.create_db("seedvar")]
        cmd += ["--port", str(port), "--artifacts-destination", str(folder / "artifacts")]
        cmd += ["--workers", str(workers)] if workers else []
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while "tracking server for seedvar" not in (folder / "server.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "server.log").read_text()[-2000:])
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        cluster.stop()
