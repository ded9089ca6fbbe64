"""A local cache of what a report reads from each finished run (arrays such as its predictions file and
training curves), so that the next report of a study reads from the store only the runs it has not seen.

An entry is keyed by the run's id, end time and a digest of its latest metrics: a resumed run finishes
with a new end time and a metric logged into a finished run changes the digest, and either replaces the
entry. Only FINISHED runs are cached: a RUNNING run is never read from the cache nor written to it. A
cache that cannot be read or written is skipped, never an error. Where: beside a local store
(`mlruns/cache/<experiment id>/`), else under `$XDG_CACHE_HOME/seedvar` (`~/.cache/seedvar`), one folder
per tracking URI and experiment.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seedvar.record.reader import StoredRun

if TYPE_CHECKING:  # MLflow loads with the store that is read (a CSV's report needs none)
    from seedvar.record.store import Store

_KEY = "_cache_key"


def folder_for(store: Store, experiment_id: str) -> Path:
    """Where the cache of one study lives: beside a local store, else in the user's cache folder."""
    beside = store.beside("cache", experiment_id)
    if beside is not None:
        return beside
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seedvar"
    return root / hashlib.sha256(store.uri.encode()).hexdigest()[:16] / experiment_id


def key(run: StoredRun) -> str:
    """What must be unchanged for a cached entry to hold: end time, status and the latest metrics."""
    metrics = json.dumps(sorted(run.metrics.items()), default=str).encode()
    return f"{run.end_time}-{run.status}-{hashlib.sha256(metrics).hexdigest()[:16]}"


class RunCache:
    """Arrays per finished run, one `.npz` file each; `RunCache(None)` caches nothing."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _path(self, run: StoredRun) -> Path | None:
        if self.folder is None or not run.finished:
            return None
        return self.folder / f"{run.run_id}.npz"

    def get(self, run: StoredRun) -> dict[str, np.ndarray] | None:
        """The arrays cached for this run as it is now, or None (not cached, changed, or unreadable)."""
        path = self._path(run)
        if path is None or not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            return None
        if str(arrays.pop(_KEY, "")) != key(run):
            return None
        return arrays

    def put(self, run: StoredRun, arrays: Mapping[str, np.ndarray]) -> None:
        """Cache a finished run's arrays (replacing an older entry); a RUNNING run is left out."""
        path = self._path(run)
        if path is None:
            return
        buf = io.BytesIO()
        np.savez(buf, **arrays, **{_KEY: np.array(key(run))})
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
                tmp.write(buf.getvalue())
            os.replace(tmp.name, path)  # atomic: a report reading at the same time sees old or new

    def prune(self, keep: Iterable[str]) -> None:
        """Remove the entries of runs no longer in the study (deleted, or superseded by a newer run)."""
        if self.folder is None or not self.folder.is_dir():
            return
        wanted = {f"{run_id}.npz" for run_id in keep}
        for path in self.folder.iterdir():
            if path.name not in wanted:
                with contextlib.suppress(OSError):
                    path.unlink()
