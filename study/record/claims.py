"""Claiming a config: one live owner at a time, so two sweeps of one study never train it twice.

Beside a local store a claim is an exclusive file lock, which dies with its process. In a tracking
server (many hosts, no shared files) a claim is the config's RUNNING child run itself: it carries an
owner tag and a heartbeat tag refreshed by a background thread. Of two live claims for one config the
earlier run wins and the other stands down; a claim whose heartbeat is older than the timeout is stale
(its process or host died) and is taken over, resuming its checkpoint into the same run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from seedvar.plan.execution import DEFAULT_CLAIM_TIMEOUT
from seedvar.record import schema as s
from seedvar.record.reader import StoredRun, child_runs
from seedvar.results import Status

if TYPE_CHECKING:
    from seedvar.record.store import Store

SETTLE = 0.5  # seconds between writing a claim and reading who holds it


class Claim(Protocol):
    """What the runner asks of a claim, whichever kind of store holds it."""

    held: bool

    def live(self, run: StoredRun) -> bool:
        """Is this run of the config being trained right now by someone else?"""
        ...

    def contest(self, run_id: str) -> bool:
        """Stake the claim on this run; False when another claimant wins."""
        ...

    def heartbeat(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        """Keep the claim fresh while the run trains."""
        ...

    def lost(self) -> bool:
        """Has another claimant taken the config over while we trained?"""
        ...


class _HeldLock:
    """A file-lock claim: while the lock is held nobody else can run the config on this machine."""

    def __init__(self, held: bool) -> None:
        self.held = held

    def live(self, run: StoredRun) -> bool:
        return False  # we hold the lock: a RUNNING run of this config belongs to a dead process

    def contest(self, run_id: str) -> bool:
        return True

    def heartbeat(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def lost(self) -> bool:
        return False


class LocalClaims:
    """flock-based claims in a folder beside the sqlite store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def claim(self, key: str, *, remove: bool = False) -> Iterator[Claim]:
        """Hold the config while the block runs; `held` is False when a live process holds it. With
        `remove`, a held lock's file is deleted as the block ends (a sweep's lock: one per sweep)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{key}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield _HeldLock(False)
                return
            os.ftruncate(fd, 0)
            os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            try:
                yield _HeldLock(True)
            finally:
                if remove:
                    path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def is_claimed(self, key: str, runs: list[StoredRun]) -> bool:
        """True when a live process (on this machine) is running the config."""
        if not (self.folder / f"{key}.lock").exists():
            return False
        with self.claim(key) as claim:
            return not claim.held


@contextlib.contextmanager
def beating(
    store: Store, run_id: str, interval: float, still_mine: Callable[[], bool] | None = None
) -> Iterator[None]:
    """While the block runs, a thread writes the run's heartbeat tag every `interval` seconds (until
    `still_mine` says the claim was lost): a RUNNING run without fresh beats belongs to a dead process."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed beat is retried at the next one
                if still_mine is not None and not still_mine():
                    return
                store.log(run_id, tags={s.TAG_HEARTBEAT: f"{time.time():.3f}"}, budget=interval)

    thread = threading.Thread(target=beat, name=f"seedvar-heartbeat-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def is_live(run: StoredRun, timeout: float, now: float | None = None) -> bool:
    """RUNNING with a heartbeat younger than the timeout."""
    now = time.time() if now is None else now
    return run.status == Status.RUNNING and now - run.heartbeat < timeout


class RunClaim:
    """A claim held in the store: the config's run, its owner tag and its heartbeat."""

    def __init__(self, store: Store, experiment_id: str, key: str, sweep: str, timeout: float) -> None:
        self.store, self.experiment_id, self.key, self.timeout = store, experiment_id, key, timeout
        self.sweep = sweep
        self.token = f"{sweep}:{uuid.uuid4().hex[:12]}"
        self.held = True
        self._lost = threading.Event()

    def _mine(self, run: StoredRun) -> bool:
        """Staked by this sweep (a retried task of the same sweep resumes its own claim)."""
        return run.tags.get(s.TAG_OWNER, "").split(":")[0] == self.sweep

    def live(self, run: StoredRun) -> bool:
        return is_live(run, self.timeout) and not self._mine(run)

    def contest(self, run_id: str) -> bool:
        """Write owner and heartbeat, let concurrent claimants do the same, then read who won: nobody
        has finished the config, the run still names this claim as owner, and no earlier live run exists."""
        self.store.log(run_id, tags={s.TAG_OWNER: self.token, s.TAG_HEARTBEAT: f"{time.time():.3f}"})
        time.sleep(SETTLE)
        return self._winning(run_id)

    def _winning(self, run_id: str) -> bool:
        runs = child_runs(self.store, self.experiment_id, self.key)
        mine = next((r for r in runs if r.run_id == run_id), None)
        if mine is None or mine.tags.get(s.TAG_OWNER) != self.token:
            return False
        if any(r.finished for r in runs if r.run_id != run_id):
            return False
        order = (mine.start_time, run_id)
        return not any(
            is_live(r, self.timeout) and (r.start_time, r.run_id) < order for r in runs if r.run_id != run_id
        )

    def heartbeat(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        """Refresh the heartbeat every quarter timeout; notice when another claimant has won."""

        def still_mine() -> bool:
            if self._winning(run_id):
                return True
            self._lost.set()
            return False

        return beating(self.store, run_id, self.timeout / 4, still_mine)

    def lost(self) -> bool:
        return self._lost.is_set()


class RunClaims:
    """Claims held in the store itself, for tracking servers and shared databases."""

    def __init__(self, store: Store, experiment_id: str, sweep: str, timeout: float) -> None:
        self.store, self.experiment_id, self.sweep, self.timeout = store, experiment_id, sweep, timeout

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[Claim]:
        yield RunClaim(self.store, self.experiment_id, key, self.sweep, self.timeout)

    def is_claimed(self, key: str, runs: list[StoredRun]) -> bool:
        """True when one of the config's runs is live (RUNNING, fresh heartbeat)."""
        return any(is_live(r, self.timeout) for r in runs)


def claims_for(
    store: Store, experiment_id: str, sweep: str = "", timeout: float = DEFAULT_CLAIM_TIMEOUT
) -> LocalClaims | RunClaims:
    """How an experiment's configs are claimed by one owner at a time: file locks beside a local store (a
    dead process releases them at once), heartbeat claims in any other store."""
    folder = store.beside("checkpoints", experiment_id)
    return LocalClaims(folder) if folder is not None else RunClaims(store, experiment_id, sweep, timeout)
