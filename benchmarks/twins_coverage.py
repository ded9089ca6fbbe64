#!/usr/bin/env python3
"""Implementation twins: the 95% intervals of the twins' difference std and of the implementation's share
of the seed variance (seedvar.stats.twins), simulated with known truth at 3, 5 and 10 twin pairs.

    .venv/bin/python benchmarks/twins_coverage.py               # 2,000 studies per cell
    .venv/bin/python benchmarks/twins_coverage.py --reps 300    # quicker, noisier

Truth: a_i = 90 + S_i + I_ai, b_i = 90.2 + S_i + I_bi (S: the seed, std s; I: the implementation, std i,
the same under both settings); the difference std is sqrt(2) i, the share i^2 / (s^2 + i^2). Also the
same on a 0.2-point grid (500 test samples: accuracies rounded), with the intervals' grid floor; there the
truth is what the grid values themselves have (the std of the rounded differences, the rounded twins'
share), worked out from a million draws: an accuracy is a count, with no finer value behind it.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from seedvar.stats.twins import diff_std, implementation_share

CELLS = [(1.0, 0.05), (1.0, 0.3), (1.0, 1.0), (0.3, 1.0)]  # (seed std, implementation std), points
PAIRS = (3, 5, 10)
GRID = 0.2  # points: 500 test samples


def draw(s: float, i: float, n: int, grid: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    seed = rng.normal(0, s, n)
    a = 90 + seed + rng.normal(0, i, n)
    b = 90.2 + seed + rng.normal(0, i, n)
    if grid:
        a, b = np.round(a / grid) * grid, np.round(b / grid) * grid
    return a, b


def truth(s: float, i: float, grid: float, rng: np.random.Generator) -> tuple[float, float]:
    """(difference std, share) of the values as drawn: exact without a grid, from 10^6 draws on one."""
    if not grid:
        return math.sqrt(2) * i, i**2 / (s**2 + i**2)
    a, b = draw(s, i, 1_000_000, grid, rng)
    v_d, v_s = np.var(b - a), np.var(a + b)
    return math.sqrt(v_d), 2 * v_d / (v_s + v_d)


def coverage(
    s: float, i: float, n: int, reps: int, grid: float, rng: np.random.Generator
) -> tuple[float, float]:
    true_std, true_share = truth(s, i, grid, rng)
    hit_std = hit_share = 0
    for _ in range(reps):
        a, b = draw(s, i, n, grid, rng)
        d = diff_std(a, b, resolution=grid)
        sh = implementation_share(a, b, resolution=grid)
        hit_std += d.ci[0] <= true_std <= d.ci[1]
        hit_share += sh.ci[0] <= true_share <= sh.ci[1]
    return hit_std / reps, hit_share / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--grid-only", action="store_true", help="only the cells on a 0.2-point grid")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| seed std | impl std | grid | n | diff_std CI | share CI |")
    print("|---|---|---|---|---|---|")
    for grid in (GRID,) if args.grid_only else (0.0, GRID):
        for s, i in CELLS:
            for n in PAIRS:
                cd, cs = coverage(s, i, n, args.reps, grid, rng)
                print(f"| {s} | {i} | {grid or '-'} | {n} | {cd:.3f} | {cs:.3f} |")


if __name__ == "__main__":
    main()
