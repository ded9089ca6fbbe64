"""The interval of a mean over trained models, and the summaries of every pass that tables print.

One estimator per reported number: a condition's mean accuracy over its trained models gets Student's
t-interval over the per-model values (95% coverage from 3 seeds up for normal accuracies), in the report,
the MLflow condition runs, the sweep's table and the two-stage report alike. Bootstrap intervals cover
71% at 3 seeds and 88% at 10, so none is used here.

Accuracies are discrete: a model tested on n samples scores on a grid of 100 / n points (the test set's
*resolution*). When the true seed spread is below one grid step, three seeds often score alike and the
sample std is 0, so the plain t-interval has zero width and misses (86% coverage at a 0.15-point std on
500 test samples). The std an interval uses is therefore floored at resolution / sqrt(12): the std of a
value spread evenly over one grid step, the least spread a grid value can hide. Nothing in Sheppard's
correction (which *subtracts* h^2/12 from a grouped variance) asks for a floor; what justifies it is the
simulation: on a 500-sample grid at a 0.15-point seed std the floored interval covers 0.98 / 0.96 / 0.95
at 3 / 5 / 10 seeds, where the plain one gives 0.86 (benchmarks/coverage.py, the README's table).

Near a bound (a few errors per model, as hyperspectral scenes at 99-100% give) the per-model values are
small counts, skewed and often all alike, and the t-interval covers 0.85-0.91 at 0.4-0.8 errors per model.
There the interval is the hull of the t-interval and an exact Poisson (Garwood) interval of the mean count
of errors, scaled by the counts' overdispersion (quasi-Poisson: the count variance over its mean, at
least 1): 0.95-1.00 from 0.2 to 10 errors per model at 3 to 10 seeds when the seeds' error rates vary by
half their mean. Where the seeds' error rates are skewed (exponential: a few much worse seeds) no interval
of a mean from 3-10 seeds holds 95% (0.88-0.95 here); the report says when the seeds look non-normal.
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

from seedvar.stats import ALPHA, LEVEL  # noqa: F401 (re-exported: every interval's level)

COUNT_LIMIT = 10.0  # mean errors per model below which an interval also holds the count-based one
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
    counted: bool = False  # the interval is the hull with the exact Poisson interval of the error counts

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
    `bounds` clip the interval to the values' possible range (0-100 for accuracy in points). With both a
    resolution and bounds, values within COUNT_LIMIT grid steps of a bound on average are counts of errors
    (or of hits): the interval is then the hull with `count_interval` (the module's docstring says why).
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
    counted = False
    if bounds is not None and resolution > 0:
        near = count_interval(x, resolution, bounds, level)
        if near is not None:
            low, high, counted = min(low, near[0]), max(high, near[1]), True
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return MeanInterval(n, mean, std, low, high, lo_x, hi_x, floored=floor > std, counted=counted)


def count_interval(
    values: np.ndarray, resolution: float, bounds: tuple[float, float], level: float = LEVEL
) -> tuple[float, float] | None:
    """The interval of the mean from the values' distances to their nearer bound read as counts (errors
    near 100%, hits near 0%): Garwood's exact Poisson interval of the mean count, scaled by the counts'
    overdispersion phi = max(1, var / mean) (a count T/phi is taken as Poisson). None when the values lie
    COUNT_LIMIT or more grid steps from both bounds on average."""
    to_high, to_low = (bounds[1] - values) / resolution, (values - bounds[0]) / resolution
    counts, sign = (to_high, -1.0) if to_high.mean() <= to_low.mean() else (to_low, 1.0)
    counts = np.maximum(counts, 0.0)
    m, mean = counts.size, float(counts.mean())
    if mean >= COUNT_LIMIT:
        return None
    phi = max(1.0, float(np.var(counts, ddof=1)) / mean) if mean > 0 and m > 1 else 1.0
    tail = (1.0 - level) / 2.0
    total = counts.sum() / phi
    lo = float(stats.chi2.ppf(tail, 2.0 * total)) / 2.0 if total > 0 else 0.0
    hi = float(stats.chi2.isf(tail, 2.0 * total + 2.0)) / 2.0
    near = (bounds[1], bounds[0])[sign > 0]
    ends = sorted((near + sign * lo * phi / m * resolution, near + sign * hi * phi / m * resolution))
    return ends[0], ends[1]


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


NON_NORMAL_P = 0.10  # Shapiro-Wilk p below which the seeds "look non-normal" and variance intervals go robust
ROBUST_FROM = 10  # seeds from which a variance interval always also holds Bonett's


def normality_p(x: ArrayLike) -> float:
    """Shapiro-Wilk p of the values (nan under 3 values or with no spread): why the report may say
    "the seeds look non-normal", a few clearly worse seeds being the usual cause."""
    a = as_1d_finite(x, "x")
    if a.size < 3 or np.ptp(a) == 0:
        return NAN
    return float(stats.shapiro(a).pvalue)


BONETT_FROM = 5  # values Bonett's trimmed mean needs (trim 1 / (2 sqrt(n - 4)))


def wants_robust(a: np.ndarray, p: float | None = None) -> bool:
    """Whether a variance interval of these values also holds Bonett's: from ROBUST_FROM values, or from
    BONETT_FROM when Shapiro-Wilk finds them non-normal (the rule `variance_interval` documents); `p`, the
    values' normality_p when the caller has it already."""
    if a.size < BONETT_FROM or np.ptp(a) == 0:
        return False
    return a.size >= ROBUST_FROM or (normality_p(a) if p is None else p) < NON_NORMAL_P


def bonett_center(a: np.ndarray) -> float:
    """The trimmed mean Bonett (2006) estimates the kurtosis about (trim 1 / (2 sqrt(n - 4))); the plain
    mean under BONETT_FROM values."""
    if a.size < BONETT_FROM:
        return float(a.mean())
    return float(stats.trim_mean(a, 1.0 / (2.0 * math.sqrt(a.size - 4))))


def _bonett_log(a: np.ndarray, z: float) -> tuple[float, float]:
    """(log of c s^2, its standard error) of Bonett's (2006) variance interval."""
    n = a.size
    m = bonett_center(a)
    ss = float(np.sum((a - a.mean()) ** 2))
    kurt = n * float(np.sum((a - m) ** 4)) / ss**2
    c = n / (n - z)
    return math.log(c * ss / (n - 1)), c * math.sqrt(max(kurt - (n - 3) / n, 0.0) / (n - 1))


@dataclass(frozen=True)
class VarianceInterval:
    """A variance (ddof=1) and its interval: chi-square, or its hull with Bonett's kurtosis-robust one."""

    variance: float
    ci: tuple[float, float]
    robust: bool
    normality_p: float


def variance_interval(x: ArrayLike, *, level: float = LEVEL) -> VarianceInterval:
    """The variance of the values with an interval that holds where the seeds are heavy-tailed as far as
    any does at that n.

    Chi-square ((n - 1) s^2 / sigma^2 ~ chi2(n - 1)) is exact for normal seeds, but with 10% of the
    seeds 4 stds worse it covers 0.90 / 0.87 / 0.83 at 3 / 5 / 10 seeds (8 stds: 0.80 / 0.64 / 0.57).
    Bonett's interval holds its rate better there but is 6 to 120 times wider at 3-5 normal seeds, so it
    is hulled in from 10 seeds on (normal seeds: 0.976 at 10, 0.964 at 30; bad seeds 4 stds worse: 0.91
    at 10 and 30) and below that only when Shapiro-Wilk finds the seeds non-normal (p < 0.10) from 5
    seeds on. Under 5 seeds no kurtosis can be estimated and heavy tails are not covered: the report says
    when the seeds look non-normal (benchmarks/coverage.py, the README's table).
    """
    level = check_level(level)
    a = as_1d_finite(x, "x")
    n = a.size
    if n < 2:
        raise ValueError("a variance interval needs at least 2 values")
    var = float(np.var(a, ddof=1))
    tail = (1.0 - level) / 2.0
    lo = (n - 1) * var / float(stats.chi2.isf(tail, n - 1))
    hi = (n - 1) * var / float(stats.chi2.ppf(tail, n - 1))
    p = normality_p(a)
    robust = wants_robust(a, p)
    if robust:
        z = float(stats.norm.isf(tail))
        center, se = _bonett_log(a, z)
        lo, hi = min(lo, math.exp(center - z * se)), max(hi, math.exp(center + z * se))
    return VarianceInterval(var, (lo, hi), robust, p)
