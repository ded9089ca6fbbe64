"""Claiming a config: one live owner at a time, so two sweeps of one study never train it twice.

Beside a local store a claim is an exclusive file lock, which dies with its process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path


class LocalClaims:
    """flock-based claims in a folder beside the sqlite store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        """Hold the config while the block runs; yields False when a live process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            os.ftruncate(fd, 0)
            os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            yield True
        finally:
            os.close(fd)

    def is_claimed(self, key: str) -> bool:
        """True when a live process (on this machine) is running the config."""
        if not (self.folder / f"{key}.lock").exists():
            return False
        with self.claim(key) as mine:
            return not mine
