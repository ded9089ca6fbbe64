"""The interval of a mean over trained models, and the summaries of every pass that tables print.

One estimator per reported number: a condition's mean accuracy over its trained models gets Student's
t-interval over the per-model values (95% coverage from 3 seeds up for normal accuracies), in the report,
the MLflow condition runs, the sweep's table and the two-stage report alike. Bootstrap intervals cover
71% at 3 seeds and 88% at 10, so none is used here.

Accuracies are discrete: a model tested on n samples scores on a grid of 100 / n points (the test set's
*resolution*). When the true seed spread is below one grid step, three seeds often score alike and the
sample std is 0, so the plain t-interval has zero width and misses (86% coverage at a 0.15-point std on
500 test samples). The std an interval uses is therefore floored at resolution / sqrt(12), the std of a
value known only to within one grid step (Sheppard 1898): the smallest spread the test set can resolve.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

LEVEL = 0.95  # every interval the report prints, and the family-wise level of its comparisons
NAN = float("nan")
NAN_PAIR: tuple[float, float] = (NAN, NAN)


def flat_dict(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict; each (low, high) tuple field `x` also as `x_low` / `x_high`."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value
        if isinstance(value, tuple) and len(value) == 2:
            out[f"{f.name}_low"], out[f"{f.name}_high"] = value
    return out


def check_level(level: float) -> float:
    """A confidence level strictly between 0 and 1."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be a confidence level strictly between 0 and 1, got {level!r}")
    return float(level)


def as_1d_finite(x: ArrayLike, name: str) -> np.ndarray:
    """A non-empty flat float array without nan or inf."""
    arr = np.asarray(x, dtype=float).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains nan or inf")
    return arr


def resolution_floor(resolution: float) -> float:
    """The smallest std a value on a grid of this step can show: step / sqrt(12) (0 without a grid)."""
    return max(float(resolution), 0.0) / math.sqrt(12.0)


def resolution_of(test_samples: Sequence[float], scale: float = 100.0) -> float:
    """The grid step of an accuracy measured on each model's test samples (the coarsest, in `scale`
    units: points by default); 0 when the test set's size is unknown."""
    sizes = [float(n) for n in test_samples if n and n > 0 and math.isfinite(float(n))]
    return scale / min(sizes) if sizes else 0.0


@dataclass(frozen=True)
class MeanInterval:
    """A mean over n replicates with its t-interval; `std` is the sample std (ddof=1) and `floored` says
    the interval used the resolution floor instead (the values spread less than the grid resolves)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    min: float
    max: float
    floored: bool = False

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    def as_dict(self) -> dict[str, Any]:
        return flat_dict(self)


def mean_interval(
    values: ArrayLike,
    *,
    level: float = LEVEL,
    resolution: float = 0.0,
    bounds: tuple[float, float] | None = None,
) -> MeanInterval:
    """Mean, std and the t-interval of the mean of independent replicates (one per trained model).

    `resolution` is the grid step of the values (100 / test samples for accuracy in points; 0 when
    continuous): the std is floored at resolution / sqrt(12). One value gives no interval (nan).
    `bounds` clip the interval to the values' possible range (0-100 for accuracy in points).
    """
    level = check_level(level)
    x = as_1d_finite(values, "values")
    n, mean = int(x.size), float(np.mean(x))
    lo_x, hi_x = float(np.min(x)), float(np.max(x))
    if n < 2:
        return MeanInterval(n, mean, NAN, NAN, NAN, lo_x, hi_x)
    if lo_x == hi_x:
        mean = lo_x  # identical values: the value itself, not a mean with rounding noise
    std = float(np.std(x, ddof=1)) if lo_x != hi_x else 0.0
    floor = resolution_floor(resolution)
    used = max(std, floor)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * used / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return MeanInterval(n, mean, std, low, high, lo_x, hi_x, floored=floor > std)


@dataclass(frozen=True)
class PooledSummary:
    """Every pass of several trained models in one mode, in points: what the summary tables show."""

    runs: int
    passes: int
    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of_passes(cls, per_run: list[np.ndarray]) -> PooledSummary:
        """From each run's per-pass accuracies in points."""
        every = np.concatenate(per_run)
        return cls(
            runs=len(per_run),
            passes=len(every),
            mean=float(every.mean()),
            std=float(every.std(ddof=1)) if len(every) > 1 else 0.0,
            min=float(every.min()),
            max=float(every.max()),
        )


def pool(
    passes: Sequence[int],
    means: Sequence[float],
    stds: Sequence[float],
    mins: Sequence[float],
    maxs: Sequence[float],
) -> PooledSummary:
    """Mean and std over every pass of every run from each run's pass count, mean and std (no per-pass
    values needed): the within-run spread plus the spread of run means."""
    n, mean, std = (np.asarray(v, dtype=float) for v in (passes, means, stds))
    total = n.sum()
    grand = (n * mean).sum() / total
    ss = ((n - 1) * std**2).sum() + (n * (mean - grand) ** 2).sum()
    return PooledSummary(
        runs=len(n),
        passes=int(total),
        mean=float(grand),
        std=float(np.sqrt(ss / (total - 1))) if total > 1 else 0.0,
        min=float(min(mins)),
        max=float(max(maxs)),
    )
