"""Where epoch checkpoints live: files beside a local store, or artifacts in a tracking server's store.

Either way a checkpoint is replaced atomically: a reader sees the previous one or the new one, whole.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from seedvar.record import schema as s
from seedvar.record.reader import StoredRun, child_runs, get_run
from seedvar.record.retry import StoreUnavailable

if TYPE_CHECKING:
    from seedvar.record.store import Store


class LocalCheckpoints:
    """One file per config hash in a folder beside the sqlite store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except OSError:
            return None

    def put(self, key: str, run_id: str, blob: bytes) -> None:
        """Atomic: a kill during the write leaves the previous checkpoint intact."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def delete(self, key: str, run_id: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


class ArtifactCheckpoints:
    """Checkpoints as artifacts of the run they belong to, in the store's (server's) artifact store.

    Each checkpoint is uploaded under a new name, then the run's checkpoint tag is pointed at it, then the
    previous one is deleted: a reader follows the tag, so it never sees a half-written checkpoint, and a
    run killed on one host resumes on another.
    """

    FOLDER = "seedvar-checkpoints"

    def __init__(self, store: Store, experiment_id: str) -> None:
        self.store, self.experiment_id = store, experiment_id

    def _holder(self, key: str) -> StoredRun | None:
        """The latest unfinished run of this config that has a checkpoint."""
        runs = child_runs(self.store, self.experiment_id, key)
        held = [r for r in runs if not r.finished and r.tags.get(s.TAG_CHECKPOINT)]
        return max(held, key=lambda r: r.start_time, default=None)

    def get(self, key: str) -> bytes | None:
        run = self._holder(key)
        if run is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            try:
                return self.store.download(run.run_id, run.tags[s.TAG_CHECKPOINT], tmp).read_bytes()
            except StoreUnavailable:  # away, not gone: starting over would fail the checkpointed run
                raise
            except Exception:  # deleted or unreadable: the run starts over rather than failing
                return None

    def put(self, key: str, run_id: str, blob: bytes) -> None:
        previous = get_run(self.store, run_id).tags.get(s.TAG_CHECKPOINT)
        path = f"{self.FOLDER}/{uuid.uuid4().hex}.pt"
        self.store.log_files(run_id, {path: blob})
        self.store.log(run_id, tags={s.TAG_CHECKPOINT: path})
        if previous:
            self.store.delete_artifacts(run_id, previous)

    def delete(self, key: str, run_id: str) -> None:
        self.store.delete_tag(run_id, s.TAG_CHECKPOINT)
        self.store.delete_artifacts(run_id, self.FOLDER)

    def exists(self, key: str) -> bool:
        return self._holder(key) is not None


def checkpoints_for(store: Store, experiment_id: str) -> LocalCheckpoints | ArtifactCheckpoints:
    """Where an experiment's runs keep their epoch checkpoints: beside a local store, else in it."""
    folder = store.beside("checkpoints", experiment_id)
    return LocalCheckpoints(folder) if folder is not None else ArtifactCheckpoints(store, experiment_id)
