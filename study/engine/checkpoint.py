"""Epoch checkpoints as bytes: what a trainer's state becomes on disk or in an artifact store.

Where the bytes live is the store's business (study/record/checkpoint_store.py): beside a local sqlite
store, or in a tracking server's artifact store so that another host can resume the run.
"""

from __future__ import annotations

import io
from typing import Any, Protocol

import torch


class CheckpointStore(Protocol):
    """Keeps one checkpoint per config hash; `put` replaces atomically, so a reader never sees half."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, run_id: str, blob: bytes) -> None: ...

    def delete(self, key: str, run_id: str) -> None: ...

    def exists(self, key: str) -> bool: ...


def to_bytes(run_id: str, trainer_state: dict[str, Any]) -> bytes:
    """A checkpoint: the MLflow run it belongs to and the trainer's whole state."""
    buf = io.BytesIO()
    torch.save({"run_id": run_id, "trainer": trainer_state}, buf)
    return buf.getvalue()


def from_bytes(blob: bytes | None) -> dict[str, Any] | None:
    """The checkpoint, or None when there is none or it cannot be read. Loaded as data, never as code."""
    if blob is None:
        return None
    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception:  # a truncated or foreign file: the run starts over rather than failing
        return None
