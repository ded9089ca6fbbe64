"""Sources of randomness: one seed per (base seed, source, replicate), and the determinism toggles.

Each source gets its own stream from numpy's SeedSequence, so varying one source never moves another.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import torch

# Order matters: a source's index is part of its SeedSequence spawn key, so never reorder these.
SOURCES = ("split", "init", "order", "augment", "dropout", "test")
TRAINING_SOURCES = SOURCES[:-1]
# What a one-source-at-a-time study may vary. "numerical" holds every seed at the base draw and repeats
# the run: only nondeterministic kernels (deterministic = false) can then make the replicates differ.
VARIABLE_SOURCES = (*TRAINING_SOURCES, "numerical")


def source_seed(base: int, source: str, replicate: int) -> int:
    """The seed of one source for one replicate, independent of every other source."""
    ss = np.random.SeedSequence(entropy=base, spawn_key=(SOURCES.index(source), replicate))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def run_seeds(base: int, replicate: int, varied: str) -> dict[str, int]:
    """Seeds of every source for one run.

    `varied == "all"`: every source draws from this replicate (ordinary seeds). Otherwise only the
    varied source moves (replicates 1..R); the others stay at replicate 0, the base draw.
    """
    if varied == "all":
        return {s: source_seed(base, s, replicate) for s in SOURCES}
    if varied == "numerical":
        return {s: source_seed(base, s, 0) for s in SOURCES}
    return {s: source_seed(base, s, replicate if s == varied else 0) for s in SOURCES}


def pass_seeds(test_seed: int, passes: int) -> list[int]:
    """One seed per test pass; pass p keeps its seed whatever the number of passes."""
    return [
        int(np.random.SeedSequence(entropy=test_seed, spawn_key=(p,)).generate_state(1, np.uint32)[0])
        for p in range(passes)
    ]


def prepare_cuda_env() -> None:
    """cuBLAS reads its workspace setting when CUDA starts, so this must run before any CUDA call."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def set_deterministic(flag: bool) -> None:
    """Deterministic kernels (bit-identical reruns) or cuDNN's fastest, possibly nondeterministic ones."""
    prepare_cuda_env()
    torch.use_deterministic_algorithms(flag)
    torch.backends.cudnn.deterministic = flag
    torch.backends.cudnn.benchmark = not flag


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Run a block under its own seed without disturbing the global generators outside it."""
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
