"""Variance components: how much of the spread is between trained models (training randomness) and
how much within a model across its test passes (test-time dropout), with confidence intervals.

Model (one trained model = one group, one test pass = one observation)::

    y_ij = mu + a_i + e_ij,   a_i ~ N(0, sigma2_between)  (training randomness: seed, data order, init)
                              e_ij ~ N(0, sigma2_within)   (test-time randomness: MC-dropout passes)

The design is balanced (every trained model has the same number of passes; `balanced` makes it so by
keeping each model's first passes, which are exchangeable draws), and the one-way ANOVA estimator gives
exact intervals under normality: chi-square for the within part, the F interval of the intraclass
correlation for the shares, and the modified large-sample interval for the between part (95% coverage
from 3 models x 10 passes up, checked by simulation). A cluster bootstrap of REML fits, which unbalanced
designs would need, covers far less at these numbers of models, so it is not used. None of these
intervals is in scipy or statsmodels, so they are written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from seedvar.stats.interval import LEVEL, NAN, NAN_PAIR, as_1d_finite, check_level, flat_dict


@dataclass(frozen=True)
class VarianceComponents:
    """Between-model (training) and within-model (test-time) variance of accuracy, with intervals.

    ``share_*`` are fractions of ``total = between + within``; they are nan (and ``zero_total`` is
    True) when there is no variance at all.  ``truncated`` says the between estimate hit its boundary:
    the ANOVA estimate (MSB - MSW)/n was negative and set to 0.
    """

    between: float
    within: float
    total: float
    share_between: float
    share_within: float
    between_ci: tuple[float, float]
    within_ci: tuple[float, float]
    share_between_ci: tuple[float, float]
    share_within_ci: tuple[float, float]
    method: str  # "anova"
    truncated: bool
    zero_total: bool
    n_groups: int
    n_obs: int
    ci_method: str

    def as_dict(self) -> dict[str, Any]:
        return flat_dict(self)


_CI_METHOD_ANOVA = (
    "within: chi-square interval on MSW; share_between/share_within: exact F-based interval for the "
    "intraclass correlation (Searle 1971; Montgomery DAE sec. 3.9); between: modified large-sample "
    "(MLS) interval for (MSB - MSW)/n (Graybill & Wang 1980; Ting et al. 1990; Burdick & Graybill "
    "1992); negative bounds set to 0"
)


def _group_stats(values: np.ndarray, groups: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group size, mean and within sum of squares (exactly 0 for constant groups)."""
    g = np.asarray(groups)
    if g.ndim != 1:
        g = g.reshape(-1)
    if g.size != values.size:
        raise ValueError(f"values and groups differ in length ({values.size} vs {g.size})")
    _, inv = np.unique(g, return_inverse=True)
    inv = inv.reshape(-1)
    counts = np.bincount(inv).astype(float)
    # Shift by one observed value so that sums are small and constant groups come out exactly.
    shift = values[0]
    z = values - shift
    sums = np.bincount(inv, weights=z)
    means = sums / counts
    ssw = np.bincount(inv, weights=(z - means[inv]) ** 2)
    # A group whose passes are all identical (eval mode) must have SSW exactly 0, not 1e-33.
    gmin = np.full(counts.size, np.inf)
    gmax = np.full(counts.size, -np.inf)
    np.minimum.at(gmin, inv, z)
    np.maximum.at(gmax, inv, z)
    const = gmin == gmax
    ssw[const] = 0.0
    means[const] = gmin[const]
    return counts, means, ssw


def _shares(between: float, within: float) -> tuple[float, float, float, bool]:
    total = between + within
    if total == 0.0:
        return total, NAN, NAN, True
    return total, between / total, within / total, False


def _anova_components(
    counts: np.ndarray, means: np.ndarray, ssw: np.ndarray, ci: float
) -> VarianceComponents:
    """Balanced one-way ANOVA estimator with exact (within, ICC) and MLS (between) intervals."""
    a = counts.size
    n = float(counts[0])
    big_n = int(counts.sum())
    df_b, df_w = a - 1, big_n - a
    grand = float(np.mean(means))
    ss_b = n * float(np.sum((means - grand) ** 2))
    ss_w = float(np.sum(ssw))
    ms_b, ms_w = ss_b / df_b, ss_w / df_w
    raw_between = (ms_b - ms_w) / n
    truncated = raw_between < 0.0
    between, within = max(raw_between, 0.0), ms_w
    total, sh_b, sh_w, zero_total = _shares(between, within)

    tail = (1.0 - ci) / 2.0
    # within: SSW / sigma2_within ~ chi2(df_w)
    within_ci = (ss_w / stats.chi2.isf(tail, df_w), ss_w / stats.chi2.ppf(tail, df_w))

    # share_between = ICC = s2b / (s2b + s2w): F0 / (1 + n * ICC/(1-ICC)) ~ F(df_b, df_w)
    if ms_w == 0.0:
        icc_ci = NAN_PAIR if ms_b == 0.0 else (1.0, 1.0)
    else:
        f0 = ms_b / ms_w
        lo = (f0 / stats.f.isf(tail, df_b, df_w) - 1.0) / n
        hi = (f0 / stats.f.ppf(tail, df_b, df_w) - 1.0) / n
        icc_ci = (
            float(np.clip(lo / (1.0 + lo), 0.0, 1.0)),
            float(np.clip(hi / (1.0 + hi), 0.0, 1.0)),
        )
    share_within_ci = (1.0 - icc_ci[1], 1.0 - icc_ci[0])

    # between: MLS interval for c1*MSB - c2*MSW with c1 = c2 = 1/n (F_{q, f, inf} = chi2_q(f) / f).
    c = 1.0 / n
    f_b_hi = stats.chi2.isf(tail, df_b) / df_b
    f_b_lo = stats.chi2.ppf(tail, df_b) / df_b
    f_w_hi = stats.chi2.isf(tail, df_w) / df_w
    f_w_lo = stats.chi2.ppf(tail, df_w) / df_w
    f_bw_hi = stats.f.isf(tail, df_b, df_w)
    f_bw_lo = stats.f.ppf(tail, df_b, df_w)
    g1, h2 = 1.0 - 1.0 / f_b_hi, 1.0 / f_w_lo - 1.0
    g12 = ((f_bw_hi - 1.0) ** 2 - g1**2 * f_bw_hi**2 - h2**2) / f_bw_hi
    h1, g2 = 1.0 / f_b_lo - 1.0, 1.0 - 1.0 / f_w_hi
    h12 = ((1.0 - f_bw_lo) ** 2 - h1**2 * f_bw_lo**2 - g2**2) / f_bw_lo
    v_lo = (g1 * c * ms_b) ** 2 + (h2 * c * ms_w) ** 2 + g12 * c * c * ms_b * ms_w
    v_hi = (h1 * c * ms_b) ** 2 + (g2 * c * ms_w) ** 2 + h12 * c * c * ms_b * ms_w
    between_ci = (
        max(raw_between - math.sqrt(max(v_lo, 0.0)), 0.0),
        max(raw_between + math.sqrt(max(v_hi, 0.0)), 0.0),
    )
    if zero_total:
        icc_ci = share_within_ci = NAN_PAIR
    return VarianceComponents(
        between=between,
        within=within,
        total=total,
        share_between=sh_b,
        share_within=sh_w,
        between_ci=(float(between_ci[0]), float(between_ci[1])),
        within_ci=(float(within_ci[0]), float(within_ci[1])),
        share_between_ci=(float(icc_ci[0]), float(icc_ci[1])),
        share_within_ci=(float(share_within_ci[0]), float(share_within_ci[1])),
        method="anova",
        truncated=bool(truncated),
        zero_total=zero_total,
        n_groups=a,
        n_obs=big_n,
        ci_method=_CI_METHOD_ANOVA,
    )


def balanced(per_model: Sequence[ArrayLike]) -> list[np.ndarray]:
    """Each model's first k passes, k the fewest any model has: a balanced design from an unbalanced one
    (passes are exchangeable draws, so dropping the last ones biases nothing)."""
    arrays = [np.asarray(v, dtype=float).reshape(-1) for v in per_model]
    k = min((a.size for a in arrays), default=0)
    return [a[:k] for a in arrays]


def equal_pass_variance_p(per_model: Sequence[ArrayLike]) -> float:
    """Brown-Forsythe p (scipy's Levene test about medians) that every trained model's passes spread alike.

    The within interval assumes one pass variance for every model; when dropout moves some seeds' models
    more than others (pass stds varying by a log-sd of 0.25 / 0.5 / 0.8 between models) it covers about
    0.80 / 0.51 / 0.28 and the dropout share's 0.94 / 0.87-0.90 / 0.69-0.78 (3-10 models x 10 passes). The
    test rejects 3% of equal-spread studies at 5% and finds a log-sd of 0.5 in 38% / 55% / 84% of them at
    3 / 5 / 10 models (benchmarks/coverage.py). nan under 2 models, 2 passes, or with no spread at all.
    """
    arrays = [as_1d_finite(v, "passes") for v in per_model]
    if len(arrays) < 2 or min(a.size for a in arrays) < 2:
        return NAN
    if all(np.ptp(a) == 0 for a in arrays):
        return NAN
    with np.errstate(divide="ignore", invalid="ignore"):
        p = float(stats.levene(*arrays, center="median").pvalue)
    return p if np.isfinite(p) else 0.0  # zero spread in every group's deviations but one: unequal


def variance_components(values: ArrayLike, groups: ArrayLike, *, ci: float = LEVEL) -> VarianceComponents:
    """Split accuracy variance into between-model (training) and within-model (test-pass) parts, with
    exact (chi-square, F) and modified large-sample intervals; the design must be balanced (`balanced`).

    Raises ValueError for fewer than two groups (no between-model variance is estimable from one
    trained model), for one observation per group (within and between are confounded) and for an
    unbalanced design.
    """
    ci = check_level(ci)
    y = as_1d_finite(values, "values")
    g = np.asarray(groups).reshape(-1)
    counts, means, ssw = _group_stats(y, g)
    a = counts.size
    if a < 2:
        raise ValueError(
            "variance_components needs at least 2 groups (trained models): between-model variance is "
            f"not estimable from {a}"
        )
    if counts[0] < 2:
        raise ValueError(
            "variance_components needs 2+ observations (test passes) per group: with one pass per model, "
            "within- and between-model variance cannot be separated"
        )
    if not np.all(counts == counts[0]):
        raise ValueError(
            "variance_components needs a balanced design (equal passes per model): pass each model's "
            "first passes, as `balanced` gives them"
        )
    return _anova_components(counts, means, ssw, ci)
