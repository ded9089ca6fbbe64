"""What every dataset shares: the error type, the data root, fingerprints, Task and BatchLoader."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ENV_ROOT = "SEEDVAR_DATA_ROOT"

# sha256 of np.ascontiguousarray(a).tobytes() for the published arrays: content, not file bytes,
# because re-saved copies (the shared folder, tensorly's .npy) hold identical arrays in other files.
KNOWN_FINGERPRINTS: dict[str, str] = {
    "cifar10/test/data": "177777c33ba79825320efa646ad04a94bdc3c80e4ebe3bd21724f8cdfd4b9d56",
    "cifar10/test/labels": "cbb7365de8ed11f05cc4c3a1e7f78144127c5e851efd83762fb18202461230bb",
    "cifar10/train/data": "9d5c2eddadb0deff02c14c350c0385aab7b1d5ff1edfeb4997c8dc8644960111",
    "cifar10/train/labels": "f5cfe00b0f00968c0cc5ff3b1d2de51b10e33efa277c2986f4e0fa63e58c9f4f",
    "indian_pines/cube": "36468dd7336c8bd37a80cced54362ea426f226703f3797ba494556fd8134e77f",
    "indian_pines/gt": "ebf20cfe0bce98f01885f0ab4fd1857925db3ef0a1f1624bbee3ffcb92425103",
}


class DataError(ValueError):
    """A dataset problem the user can fix; the message is one line saying what and how."""


def data_root(root: str | Path | None = None) -> Path:
    """Where datasets live: explicit root, else $SEEDVAR_DATA_ROOT, else ~/.cache/seedvar/datasets."""
    if root is None:
        root = os.environ.get(ENV_ROOT) or Path.home() / ".cache" / "seedvar" / "datasets"
    return Path(root).expanduser()


def fingerprint(array: np.ndarray) -> str:
    """sha256 of the array's C-order bytes: identifies content independent of the file it came from."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def combine(*parts: str | np.ndarray) -> str:
    """One sha256 over fingerprints, settings and index arrays, in order: the id of data built from them."""
    h = hashlib.sha256()
    for part in parts:
        h.update((part if isinstance(part, str) else fingerprint(part)).encode())
        h.update(b"\0")
    return h.hexdigest()


def brief(e: BaseException) -> str:
    """An exception as one short line, for wrapping library errors into one-line DataErrors."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """Validate an integer option (bools rejected) so a bad spec fails before any loading."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"option {name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise DataError(f"option {name} must be {bound}, got {value}")
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """Validate a flag: a stray string such as "false" must not count as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise DataError(f"option {name} must be true or false, got {value!r}")
    return bool(value)


def as_device(device: str | torch.device) -> torch.device:
    """Parse the device up front so 'cuda' on a CPU-only machine is a one-line DataError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DataError(f"invalid device {device!r} ({brief(e)}): use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device {device!r} requested but CUDA is not available: use device='cpu'")
    return dev


class BatchLoader:
    """Samples held on the device, served as whole-batch tensors with no worker processes.

    Random draws (order, augmentation) come from CPU generators and are moved to the device,
    so a given seed yields identical batches on CPU and CUDA. Subclasses implement `_gather`.
    """

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels
        self.device = labels.device

    def __len__(self) -> int:
        return len(self.labels)

    def num_batches(self, batch_size: int) -> int:
        """Batches per pass, counting the last partial one."""
        return math.ceil(len(self) / check_int("batch_size", batch_size, 1))

    def batches(
        self,
        batch_size: int,
        *,
        order: torch.Generator | None = None,
        augment: torch.Generator | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass: (x float32, y int64) batches; order=None is sequential, augment=None is clean."""
        check_int("batch_size", batch_size, 1)
        n = len(self)
        idx = torch.randperm(n, generator=order) if order is not None else torch.arange(n)
        idx = idx.to(self.device)
        for start in range(0, n, batch_size):
            b = idx[start : start + batch_size]
            yield self._gather(b, augment), self.labels[b]

    def _gather(self, idx: torch.Tensor, augment: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class Task:
    """Everything a run needs from a dataset: shapes, class names, loaders and facts to log."""

    name: str
    kind: str  # "image" | "hyperspectral"
    in_shape: tuple[int, ...]
    num_classes: int
    class_names: list[str]
    label_ids: list[int]
    train: BatchLoader
    test: BatchLoader
    # Stable id of each test sample in its source (image index, or row * width + col of a pixel), in test
    # order: two runs with different splits can then be compared on the test samples they share.
    test_ids: np.ndarray
    # The same ids of the training samples, where a dataset knows them (scenes: to draw the split's map).
    train_ids: np.ndarray | None = None
    test_coords: np.ndarray | None = None
    gt: np.ndarray | None = None
    # Facts to log, among them "content_sha256" (the source arrays) and "fingerprint" (what a run loads:
    # that content, how it was prepared and the train/test split), which every builder fills in.
    info: dict[str, int | float | str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """sha256 of the data this task serves: equal fingerprints, equal training and test data."""
        return str(self.info["fingerprint"])
