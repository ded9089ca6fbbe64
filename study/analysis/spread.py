"""Spread of a set of accuracies: mean, std, range and a bootstrap CI of the mean.

Also the helpers every statistics module here shares (input checks, scipy's bootstrap with quiet
fallbacks, flat table rows). Accuracies may be fractions or percentage points: all are plain numbers.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from seedvar.results import PassSummary

NAN = float("nan")
NAN_PAIR: tuple[float, float] = (NAN, NAN)


def flat_dict(obj: Any) -> dict[str, Any]:
    """Fields as a dict; each (low, high) tuple field ``x`` also appears as ``x_low`` / ``x_high``.

    Both spellings are kept so that table code can use flat scalar columns while code that reads the
    dataclass field names still finds them.
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value
        if isinstance(value, tuple) and len(value) == 2:
            out[f"{f.name}_low"], out[f"{f.name}_high"] = value
    return out


def check_ci(ci: float) -> float:
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be a confidence level strictly between 0 and 1, got {ci!r}")
    return float(ci)


def as_1d_finite(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains nan or inf")
    return arr


def bootstrap_ci(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    point: float,
    *,
    ci: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float, str]:
    """BCa interval from scipy; percentile when BCa is undefined; (point, point) when both are.

    Small or tied samples make BCa's acceleration/bias terms undefined (scipy then warns and returns
    nan): a percentile interval is the honest fallback, and a constant bootstrap distribution means
    there is no sampling spread to report at all.
    """
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = stats.bootstrap(
                    data,
                    statistic,
                    n_resamples=n_resamples,
                    confidence_level=ci,
                    method=method,
                    vectorized=True,
                    rng=np.random.default_rng(seed),
                )
            except ValueError:
                continue
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not caught and math.isfinite(low) and math.isfinite(high):
            return low, high, method
    return point, point, "degenerate"


@dataclass(frozen=True)
class Spread:
    """Location and spread of one set of accuracies (e.g. one accuracy per seed)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    min: float
    max: float
    ci_method: str  # "BCa" | "percentile" | "degenerate" (all values equal or n < 2: ci = (mean, mean))

    def as_dict(self) -> dict[str, Any]:
        return flat_dict(self)


def _mean_last_axis(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def spread(values: ArrayLike, *, ci: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> Spread:
    """Mean, std (ddof=1), range and a bootstrap CI of the mean (scipy BCa), quiet on degenerate input.

    A seed sweep is small and often tied (accuracies are multiples of 1/N), so BCa may be undefined;
    the fallback order is BCa -> percentile -> (mean, mean), and ``ci_method`` records which was used.
    """
    ci = check_ci(ci)
    x = as_1d_finite(values, "values")
    n = int(x.size)
    x_min, x_max = float(np.min(x)), float(np.max(x))
    if x_min == x_max:  # eval-mode style: report the value itself, not a mean with rounding noise
        return Spread(n, x_min, 0.0 if n >= 2 else NAN, x_min, x_min, x_min, x_max, "degenerate")
    mean = float(np.mean(x))
    lo, hi, method = bootstrap_ci((x,), _mean_last_axis, mean, ci=ci, n_resamples=n_resamples, seed=seed)
    # a bootstrap mean cannot leave [min, max]; clip float noise so tables never show 0.9200000000000002
    lo, hi = min(max(lo, x_min), x_max), min(max(hi, x_min), x_max)
    return Spread(n, mean, float(np.std(x, ddof=1)), lo, hi, x_min, x_max, method)


@dataclass(frozen=True)
class SeedSpread:
    """One condition and mode across trained models: mean, std and t-based 95% CI of the per-run mean
    accuracy (fractions, like the runs' `test.<mode>.acc_mean`): the spread across seeds."""

    runs: int
    acc_mean: float
    acc_std: float | None  # None below two runs: no spread to speak of
    acc_ci_low: float | None
    acc_ci_high: float | None

    @classmethod
    def of(cls, run_means: ArrayLike) -> SeedSpread:
        x = np.asarray(run_means, dtype=float)
        if len(x) < 2:
            return cls(len(x), float(x.mean()), None, None, None)
        std = float(x.std(ddof=1))
        if std == 0:  # identical runs: the interval is the point (scipy would give nan)
            low = high = float(x.mean())
        else:
            low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=std / np.sqrt(len(x)))
        return cls(len(x), float(x.mean()), std, float(low), float(high))


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
        """From each run's per-pass accuracies in points (the report has them all)."""
        every = np.concatenate(per_run)
        return cls(
            runs=len(per_run),
            passes=len(every),
            mean=float(every.mean()),
            std=float(every.std(ddof=1)) if len(every) > 1 else 0.0,
            min=float(every.min()),
            max=float(every.max()),
        )


def pool(summaries: list[PassSummary]) -> PooledSummary:
    """Mean and std over every pass of every run, from each run's summary (no per-pass values needed):
    the within-run spread plus the spread of run means."""
    n = np.array([s.passes for s in summaries], dtype=float)
    mean = np.array([s.acc_mean for s in summaries])
    std = np.array([s.acc_std for s in summaries])
    total = n.sum()
    grand = (n * mean).sum() / total
    ss = ((n - 1) * std**2).sum() + (n * (mean - grand) ** 2).sum()
    return PooledSummary(
        runs=len(summaries),
        passes=int(total),
        mean=100 * grand,
        std=100 * np.sqrt(ss / (total - 1)) if total > 1 else 0.0,
        min=100 * min(s.acc_min for s in summaries),
        max=100 * max(s.acc_max for s in summaries),
    )
