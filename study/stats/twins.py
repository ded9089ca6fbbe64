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

LEVEL = 0.95
NAN = float("nan")


def _floor(resolution: float) -> float:
    """The least std a value on a grid of `resolution` can hide (seedvar.stats.interval's floor)."""
    return resolution / math.sqrt(12.0)


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
    used = max(s, _floor(resolution))
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
    used = max(v_d, 2 * _floor(resolution) ** 2)
    if used == 0:
        return Share(n, share, (0.0, 0.0))
    ratio = v_s / used
    df = n - 1
    rho_lo = max(1.0, ratio / stats.f.ppf(1 - (1 - level) / 2, df, df))
    rho_hi = max(1.0, ratio / stats.f.ppf((1 - level) / 2, df, df))
    return Share(n, share, (2 / (rho_hi + 1), 2 / (rho_lo + 1)))


def twin_churn(pairs: Sequence[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]) -> float:
    """Mean over twin pairs of the share of shared test samples whose predicted class differs; each twin
    given as (test sample ids, predictions). nan without pairs."""
    rates = []
    for (ids_a, pred_a), (ids_b, pred_b) in pairs:
        common, ia, ib = np.intersect1d(ids_a, ids_b, return_indices=True)
        if common.size:
            rates.append(float(np.mean(np.asarray(pred_a)[ia] != np.asarray(pred_b)[ib])))
    return float(np.mean(rates)) if rates else NAN


def time_ratio(seconds_a: ArrayLike, seconds_b: ArrayLike) -> float:
    """b's time over a's (seconds per epoch), the geometric mean of the pairs' ratios: a ratio of 2 and
    one of 0.5 average to 1. nan when a time is missing or not positive."""
    x, y = np.asarray(seconds_a, float), np.asarray(seconds_b, float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return NAN
    return float(np.exp(np.mean(np.log(y[ok] / x[ok]))))
