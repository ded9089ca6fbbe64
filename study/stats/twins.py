"""Implementation twins: the same seeds trained twice under another implementation (deterministic or
nondeterministic kernels, another CPU thread count, another precision or device). What differs between
twins is implementation randomness (Zhuang et al. 2022), measured here apart from the seeds' spread.

Model (one condition pair, n twin pairs): a_i = m_a + S_i + I_ai and b_i = m_b + S_i + I_bi, with S_i the
seed's effect (variance s2) shared by both twins and I the implementation's (variance i2, the same under
both settings), all normal and independent. Then the differences d_i = b_i - a_i have variance 2 i2, the
sums a_i + b_i variance 4 s2 + 2 i2, and the two are independent: their sample variances are independent
chi-squares. Both intervals below are exact under this model (checked by simulation at 3 to 10 pairs in
tests/test_twins.py; the README's "What the deterministic toggle buys").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from seedvar.stats.interval import LEVEL, resolution_floor

NAN = float("nan")


@dataclass(frozen=True)
class DiffStd:
    """The std of the twins' paired differences with its chi-square interval (same units as the values)."""

    pairs: int
    std: float
    ci: tuple[float, float]


def diff_std(a: ArrayLike, b: ArrayLike, *, resolution: float = 0.0, level: float = LEVEL) -> DiffStd:
    """Std of b_i - a_i over the pairs and its `level` interval from the chi-square distribution of
    (n-1) s^2 / sigma^2 (n-1 degrees of freedom). On a grid of `resolution` (accuracy: 100 / test samples)
    the interval's std is floored at resolution / sqrt(12), so twins whose differences all tie on the grid
    get an upper bound instead of [0, 0]; pass 0 when the twins are known identical (same weights)."""
    d = np.asarray(b, float) - np.asarray(a, float)
    n = d.size
    if n < 2:
        return DiffStd(n, NAN, (NAN, NAN))
    s = float(np.std(d, ddof=1))
    used = max(s, resolution_floor(resolution))
    df = n - 1
    lo = used * math.sqrt(df / stats.chi2.ppf(1 - (1 - level) / 2, df))
    hi = used * math.sqrt(df / stats.chi2.ppf((1 - level) / 2, df))
    return DiffStd(n, s, (lo, hi))


@dataclass(frozen=True)
class Share:
    """The implementation's share of one run's seed-to-seed variance, i2 / (s2 + i2), with its interval."""

    pairs: int
    share: float
    ci: tuple[float, float]


def implementation_share(
    a: ArrayLike, b: ArrayLike, *, resolution: float = 0.0, level: float = LEVEL
) -> Share:
    """How much of the variance the seeds give one run the implementation alone gives: i2 / (s2 + i2),
    estimated as 2 v_d / (v_s + v_d) from the variances of the pairs' differences (v_d, estimating 2 i2)
    and sums (v_s, estimating 4 s2 + 2 i2). Their ratio over its truth rho = 1 + 2 s2 / i2 is F(n-1, n-1),
    and share = 2 / (rho + 1) is monotone in rho: the interval is exact (rho >= 1 clips the share at 1).
    v_d is floored at the grid's 2 (resolution^2 / 12) for the interval, as `diff_std` floors its std."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    n = x.size
    if n < 2:
        return Share(n, NAN, (NAN, NAN))
    v_d = float(np.var(y - x, ddof=1))
    v_s = float(np.var(y + x, ddof=1))
    if v_s + v_d == 0:  # neither seeds nor implementation moved anything
        return Share(n, NAN, (NAN, NAN))
    share = min(1.0, 2 * v_d / (v_s + v_d))
    used = max(v_d, 2 * resolution_floor(resolution) ** 2)
    if used == 0:
        return Share(n, share, (0.0, 0.0))
    ratio = v_s / used
    df = n - 1
    rho_lo = max(1.0, ratio / stats.f.ppf(1 - (1 - level) / 2, df, df))
    rho_hi = max(1.0, ratio / stats.f.ppf((1 - level) / 2, df, df))
    return Share(n, share, (2 / (rho_hi + 1), 2 / (rho_lo + 1)))


@dataclass(frozen=True)
class Churn:
    """The share of test samples whose eval prediction differs between twins (a fraction), the mean over
    twin pairs, with its interval."""

    pairs: int
    rate: float
    ci: tuple[float, float]


GPQ_DRAWS = 8000  # draws of the generalized pivotal quantity (fixed seed: the same pairs, the same interval)


def gamma_mean_interval(x: ArrayLike, level: float = LEVEL) -> tuple[float, float]:
    """Interval of the mean of non-negative, right-skewed values (n >= 2): the generalized pivotal quantity
    of Krishnamoorthy, Mathew & Mukherjee (2008) on the cube-root scale (Wilson-Hilferty: cube roots of
    gamma values are nearly normal, and E[Y^3] = mu^3 + 3 mu sigma^2 for Y ~ N(mu, sigma^2)). A t-interval
    over 3 to 10 such values covered 88% in simulation; this one 94-96% (benchmarks/coverage.py)."""
    y = np.cbrt(np.asarray(x, float))
    n = y.size
    rng = np.random.default_rng(0)
    z = rng.standard_normal(GPQ_DRAWS)
    u = rng.chisquare(n - 1, GPQ_DRAWS)
    s2 = (n - 1) * float(np.var(y, ddof=1)) / u
    mu = float(y.mean()) - z * np.sqrt(s2 / n)
    lo, hi = np.quantile(mu**3 + 3 * mu * s2, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def twin_churn(
    pairs: Sequence[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
    level: float = LEVEL,
) -> Churn:
    """Mean over twin pairs of the share of shared test samples whose predicted class differs; each twin
    given as (test sample ids, predictions). Its interval: the gamma-mean interval of the pairs' rates
    (churn is positive and right-skewed across seeds), hulled with the exact binomial interval of the
    pooled counts, which holds where the pairs churn alike and where few samples change (twins identical
    in every pair get an upper bound, not [0, 0]). nan without pairs; no interval from one pair."""
    counts, sizes = [], []
    for (ids_a, pred_a), (ids_b, pred_b) in pairs:
        common, ia, ib = np.intersect1d(ids_a, ids_b, return_indices=True)
        if common.size:
            counts.append(int(np.sum(np.asarray(pred_a)[ia] != np.asarray(pred_b)[ib])))
            sizes.append(int(common.size))
    return churn_of(counts, sizes, level)


def churn_of(counts: Sequence[int], sizes: Sequence[int], level: float = LEVEL) -> Churn:
    """The churn of twin pairs from each pair's count of changed predictions out of its shared samples."""
    if len(counts) == 0:
        return Churn(0, NAN, (NAN, NAN))
    rates = np.asarray(counts, float) / np.asarray(sizes, float)
    n = rates.size
    if n < 2:
        return Churn(n, float(rates[0]), (NAN, NAN))
    lo, hi = gamma_mean_interval(rates, level)
    c_lo, c_hi = proportion_confint(int(sum(counts)), int(sum(sizes)), alpha=1 - level, method="beta")
    return Churn(n, float(rates.mean()), (max(0.0, min(lo, c_lo)), min(1.0, max(hi, c_hi))))


@dataclass(frozen=True)
class TimeRatio:
    """b's seconds per epoch over a's: the geometric mean over pairs, with its interval."""

    pairs: int
    ratio: float
    ci: tuple[float, float]


def time_ratio(seconds_a: ArrayLike, seconds_b: ArrayLike, level: float = LEVEL) -> TimeRatio:
    """b's time over a's (seconds per epoch), the geometric mean of the pairs' ratios (a ratio of 2 and one
    of 0.5 average to 1), its interval the t-interval of the log ratios taken back (exact for log-normal
    times). nan when no pair has both times positive; no interval from one pair."""
    x, y = np.asarray(seconds_a, float), np.asarray(seconds_b, float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    logs = np.log(y[ok] / x[ok])
    n = logs.size
    if n == 0:
        return TimeRatio(0, NAN, (NAN, NAN))
    ratio = float(np.exp(logs.mean()))
    if n < 2:
        return TimeRatio(n, ratio, (NAN, NAN))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * float(np.std(logs, ddof=1)) / math.sqrt(n)
    return TimeRatio(n, ratio, (float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half))))
