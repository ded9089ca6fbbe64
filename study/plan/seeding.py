"""Sources of randomness: one seed per (base seed, source, replicate).

Each source gets its own stream from numpy's SeedSequence, so varying one source never moves another.
The torch side (seeded generators, deterministic kernels) is the engine's: study/engine/determinism.py.
"""

from __future__ import annotations

import numpy as np

from seedvar.results import REFERENCE

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
    if varied == REFERENCE:
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
