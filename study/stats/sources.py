"""Sources of training randomness against the whole: each source's variance as a ratio to the variance
with every source varied (`all`), with F-based intervals, and whether those intervals overlap.

Sources varied one at a time do not add up to the all-sources variance (Summers & Dinneen 2021 found
each alone gives nearly all of it), so a share of their sum means nothing; the ratio to `all` does.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from seedvar.stats.interval import (
    BONETT_FROM,
    LEVEL,
    NAN,
    NAN_PAIR,
    as_1d_finite,
    bonett_center,
    check_level,
    flat_dict,
    mean_interval,
    wants_robust,
)


@dataclass(frozen=True)
class VarianceRatio:
    """var(x) / var(reference) with a confidence interval for the ratio of the true variances.

    Under normality (s_x^2 / sigma_x^2) / (s_r^2 / sigma_r^2) ~ F(n_x - 1, n_r - 1), which inverts to
    ratio / F_{1-a/2} <= sigma_x^2 / sigma_r^2 <= ratio / F_{a/2}. Heavy-tailed seeds (a few clearly
    worse) break it, so from 10 values a side, or 5 that look non-normal, the interval is its hull with
    Bonett's (2006) kurtosis-robust one. nan when the reference does not vary.
    """

    n: int
    n_reference: int
    variance: float
    reference_variance: float
    ratio: float
    ratio_ci: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return flat_dict(self)


def variance_ratio(x: ArrayLike, reference: ArrayLike, *, ci: float = LEVEL) -> VarianceRatio:
    """Ratio of two sample variances (ddof=1) and its F-based interval (scipy.stats.f)."""
    ci = check_level(ci)
    a, r = as_1d_finite(x, "x"), as_1d_finite(reference, "reference")
    if a.size < 2 or r.size < 2:
        raise ValueError("a variance ratio needs at least 2 values on each side")
    va, vr = float(np.var(a, ddof=1)), float(np.var(r, ddof=1))
    if vr == 0.0:
        return VarianceRatio(a.size, r.size, va, vr, NAN, NAN_PAIR)
    ratio = va / vr
    tail = (1.0 - ci) / 2.0
    d1, d2 = a.size - 1, r.size - 1
    lo = ratio / stats.f.isf(tail, d1, d2)
    hi = ratio / stats.f.ppf(tail, d1, d2)
    if va > 0 and (wants_robust(a) or wants_robust(r)):
        z = float(stats.norm.isf(tail))
        center, se = _bonett_log_ratio(a, r, z)
        lo, hi = min(lo, math.exp(center - z * se)), max(hi, math.exp(center + z * se))
    return VarianceRatio(a.size, r.size, va, vr, ratio, (float(lo), float(hi)))


def _bonett_log_ratio(a: np.ndarray, r: np.ndarray, z: float) -> tuple[float, float]:
    """(log of c s_a^2 / s_r^2, its standard error): Bonett's (2006) kurtosis-robust interval for a ratio
    of variances, the kurtosis pooled over both samples about their trimmed means."""
    if min(a.size, r.size) < BONETT_FROM:  # a trimmed mean needs 5 values: pool about the plain means
        ma, mr = a.mean(), r.mean()
    else:
        ma, mr = bonett_center(a), bonett_center(r)
    na, nr = a.size, r.size
    ssa, ssr = float(np.sum((a - a.mean()) ** 2)), float(np.sum((r - r.mean()) ** 2))
    kurt = (na + nr) * float(np.sum((a - ma) ** 4) + np.sum((r - mr) ** 4)) / (ssa + ssr) ** 2
    se = math.sqrt(max(kurt - (na - 3) / na, 0.0) / (na - 1) + max(kurt - (nr - 3) / nr, 0.0) / (nr - 1))
    c = (na / (na - z)) / (nr / (nr - z))
    return math.log(c * (ssa / (na - 1)) / (ssr / (nr - 1))), se


def ratios_to_reference(
    values: ArrayLike, sources: ArrayLike, *, reference: str, ci: float = LEVEL
) -> pd.DataFrame:
    """One row per source (reference first): mean, std and t-interval, variance, ratio to the reference
    and its F interval.

    The reference row has ratio 1 and no interval. Sources with fewer than 2 values, or a reference
    with fewer than 2, get nan ratios.
    """
    y = as_1d_finite(values, "values")
    src = np.asarray(sources).reshape(-1)
    if src.size != y.size:
        raise ValueError(f"values and sources differ in length ({y.size} vs {src.size})")
    labels = list(pd.unique(pd.Series(src)))
    if reference in labels:
        labels.remove(reference)
        labels.insert(0, reference)
    ref = y[src == reference]
    rows = []
    for label in labels:
        x = y[src == label]
        s = mean_interval(x, level=ci)
        row = {"source": label, **s.as_dict(), "variance": s.std**2 if x.size > 1 else NAN}
        if label == reference:
            ratio, lo, hi = (1.0, NAN, NAN) if ref.size > 1 and np.var(ref) > 0 else (NAN, NAN, NAN)
        elif x.size > 1 and ref.size > 1:
            vr = variance_ratio(x, ref, ci=ci)
            ratio, (lo, hi) = vr.ratio, vr.ratio_ci
        else:
            ratio, lo, hi = NAN, NAN, NAN
        rows.append({**row, "ratio_to_all": ratio, "ratio_ci_low": lo, "ratio_ci_high": hi})
    return pd.DataFrame(rows)


def disjoint_pairs(intervals: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    """Pairs (higher, lower) whose intervals do not overlap; an empty list means no ranking is supported.
    Not a test (compare.separated_pairs gives the pairs the Holm-corrected tests tell apart)."""
    out = []
    for a, b in itertools.combinations(intervals, 2):
        (a_lo, a_hi), (b_lo, b_hi) = intervals[a], intervals[b]
        if a_lo > b_hi:
            out.append((a, b))
        elif b_lo > a_hi:
            out.append((b, a))
    return out
