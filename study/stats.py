"""Statistics for seed studies: where the spread of test accuracy comes from, and how sure we are.

Small functions on plain numpy arrays that return frozen dataclasses (``.as_dict()`` for tables) or
pandas DataFrames.  scipy, statsmodels and numpy do the heavy lifting; only what none of them offers
is written here: the one-way random-effects ANOVA estimator with its exact / modified large-sample
intervals, a batched one-way REML used to refit cluster-bootstrap resamples quickly, and flip rates.

Accuracies may be fractions in [0, 1] or percentage points: every function treats them as plain numbers.

Model behind :func:`variance_components` (one trained model = one group, one test pass = one observation)::

    y_ij = mu + a_i + e_ij,   a_i ~ N(0, sigma2_between)  (training randomness: seed, data order, init)
                              e_ij ~ N(0, sigma2_within)   (test-time randomness: MC-dropout passes)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower

__all__ = [
    "Comparison",
    "Spread",
    "VarianceComponents",
    "churn",
    "churn_matrix",
    "compare",
    "compare_all",
    "flip_rate",
    "mean_churn",
    "per_source_spread",
    "replicates_needed",
    "spread",
    "spread_test",
    "variance_components",
]

_NAN = float("nan")
_NAN_PAIR: tuple[float, float] = (_NAN, _NAN)


def _flat_dict(obj: Any) -> dict[str, Any]:
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


def _check_ci(ci: float) -> float:
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be a confidence level strictly between 0 and 1, got {ci!r}")
    return float(ci)


def _as_1d_finite(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains nan or inf")
    return arr


# --------------------------------------------------------------------------------------------------
# Bootstrap helper (scipy.stats.bootstrap with quiet, documented fallbacks)
# --------------------------------------------------------------------------------------------------


def _bootstrap_ci(
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


# --------------------------------------------------------------------------------------------------
# spread
# --------------------------------------------------------------------------------------------------


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
        return _flat_dict(self)


def _mean_last_axis(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def spread(values: ArrayLike, *, ci: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> Spread:
    """Mean, std (ddof=1), range and a bootstrap CI of the mean (scipy BCa), quiet on degenerate input.

    A seed sweep is small and often tied (accuracies are multiples of 1/N), so BCa may be undefined;
    the fallback order is BCa -> percentile -> (mean, mean), and ``ci_method`` records which was used.
    """
    ci = _check_ci(ci)
    x = _as_1d_finite(values, "values")
    n = int(x.size)
    x_min, x_max = float(np.min(x)), float(np.max(x))
    if x_min == x_max:  # eval-mode style: report the value itself, not a mean with rounding noise
        return Spread(n, x_min, 0.0 if n >= 2 else _NAN, x_min, x_min, x_min, x_max, "degenerate")
    mean = float(np.mean(x))
    lo, hi, method = _bootstrap_ci((x,), _mean_last_axis, mean, ci=ci, n_resamples=n_resamples, seed=seed)
    # a bootstrap mean cannot leave [min, max]; clip float noise so tables never show 0.9200000000000002
    lo, hi = min(max(lo, x_min), x_max), min(max(hi, x_min), x_max)
    return Spread(n, mean, float(np.std(x, ddof=1)), lo, hi, x_min, x_max, method)


# --------------------------------------------------------------------------------------------------
# variance components
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VarianceComponents:
    """Between-model (training) and within-model (test-time) variance of accuracy, with intervals.

    ``share_*`` are fractions of ``total = between + within``; they are nan (and ``zero_total`` is
    True) when there is no variance at all.  ``truncated`` says the between estimate hit its boundary:
    the ANOVA estimate (MSB - MSW)/n was negative and set to 0, or REML landed on sigma2_between = 0.
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
    method: str  # "anova" | "reml"
    truncated: bool
    zero_total: bool
    n_groups: int
    n_obs: int
    ci_method: str

    def as_dict(self) -> dict[str, Any]:
        return _flat_dict(self)


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
        return total, _NAN, _NAN, True
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
        icc_ci = _NAN_PAIR if ms_b == 0.0 else (1.0, 1.0)
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
        icc_ci = share_within_ci = _NAN_PAIR
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


_LOG10_GAMMA_GRID = np.linspace(-10.0, 10.0, 101)  # gamma = sigma2_between / sigma2_within
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _reml_objective(
    gamma: np.ndarray, n: np.ndarray, m: np.ndarray, ssw_sum: np.ndarray, big_n: np.ndarray
) -> np.ndarray:
    """-2 x profiled REML log-likelihood (up to a constant) of the one-way model at ratio ``gamma``.

    With sigma2_within = s and sigma2_between = gamma * s, the group means carry weights
    w_i = n_i / (1 + n_i gamma); profiling s out gives s(gamma) = Q(gamma) / (N - 1) with
    Q = SSW + sum_i w_i (ybar_i - mu_hat)^2, and the criterion
    (N - 1) log Q + sum_i log(1 + n_i gamma) + log(sum_i w_i).  Works on leading batch axes.
    """
    g = gamma[..., None]
    w = n / (1.0 + n * g)
    sw = np.sum(w, axis=-1)
    mu = np.sum(w * m, axis=-1) / sw
    q = ssw_sum + np.sum(w * (m - mu[..., None]) ** 2, axis=-1)
    return (big_n - 1.0) * np.log(q) + np.sum(np.log1p(n * g), axis=-1) + np.log(sw)


def _reml_q(gamma: np.ndarray, n: np.ndarray, m: np.ndarray, ssw_sum: np.ndarray) -> np.ndarray:
    g = gamma[..., None]
    w = n / (1.0 + n * g)
    mu = np.sum(w * m, axis=-1) / np.sum(w, axis=-1)
    return ssw_sum + np.sum(w * (m - mu[..., None]) ** 2, axis=-1)


def _reml_oneway(n: np.ndarray, m: np.ndarray, ssw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched one-way REML: (between, within, gamma) over the leading axes of (..., groups) arrays.

    statsmodels' MixedLM is the reference fit but costs ~25 ms per fit, too slow for thousands of
    cluster-bootstrap refits; this maximises the same restricted likelihood for all resamples at once
    (grid over log gamma, then golden-section refinement, boundary gamma = 0 checked explicitly).
    Without any within-group variation (SSW = 0) REML puts sigma2_within = 0 and sigma2_between at the
    ddof=1 variance of the group means; with no within degrees of freedom the result is nan.
    """
    n = np.asarray(n, dtype=float)
    m = np.asarray(m, dtype=float)
    a = n.shape[-1]
    big_n = np.sum(n, axis=-1)
    ssw_sum = np.sum(ssw, axis=-1)
    batch = big_n.shape

    with np.errstate(divide="ignore", invalid="ignore"):
        f_zero = _reml_objective(np.zeros(batch), n, m, ssw_sum, big_n)
        f_grid = np.stack(
            [_reml_objective(np.full(batch, 10.0**t), n, m, ssw_sum, big_n) for t in _LOG10_GAMMA_GRID],
            axis=-1,
        )
        k = np.argmin(np.where(np.isnan(f_grid), np.inf, f_grid), axis=-1)
        top = _LOG10_GAMMA_GRID.size - 1
        lo = _LOG10_GAMMA_GRID[np.clip(k - 1, 0, top)]
        hi = _LOG10_GAMMA_GRID[np.clip(k + 1, 0, top)]
        x1 = hi - _GOLDEN * (hi - lo)
        x2 = lo + _GOLDEN * (hi - lo)
        f1 = _reml_objective(10.0**x1, n, m, ssw_sum, big_n)
        f2 = _reml_objective(10.0**x2, n, m, ssw_sum, big_n)
        for _ in range(45):
            left = f1 <= f2
            hi = np.where(left, x2, hi)
            lo = np.where(left, lo, x1)
            x2_new = np.where(left, x1, lo + _GOLDEN * (hi - lo))
            x1_new = np.where(left, hi - _GOLDEN * (hi - lo), x2)
            x1, x2 = x1_new, x2_new
            f_new = _reml_objective(10.0 ** np.where(left, x1, x2), n, m, ssw_sum, big_n)
            f1, f2 = np.where(left, f_new, f2), np.where(left, f1, f_new)
        t = (lo + hi) / 2.0
        f_t = _reml_objective(10.0**t, n, m, ssw_sum, big_n)
        gamma = np.where(f_zero <= f_t, 0.0, 10.0**t)
        within = _reml_q(gamma, n, m, ssw_sum) / (big_n - 1.0)
        between = gamma * within

        no_within_info = (big_n - a) <= 0
        exact = ssw_sum == 0.0  # REML limit: sigma2_within = 0, between = var(means, ddof=1)
        var_means = np.var(m, axis=-1, ddof=1) if a > 1 else np.full(batch, np.nan)
        between = np.where(exact, var_means, between)
        within = np.where(exact, 0.0, within)
        gamma = np.where(exact, np.inf, gamma)
        between = np.where(no_within_info, np.nan, between)
        within = np.where(no_within_info, np.nan, within)
    return between, within, gamma


def _mixedlm_reml(values: np.ndarray, groups: np.ndarray) -> tuple[float, float, bool]:
    """statsmodels MixedLM REML fit of a random intercept per group: (between, within, converged)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = MixedLM(values, np.ones((values.size, 1)), groups=groups).fit(reml=True)
        except (ValueError, np.linalg.LinAlgError):
            return _NAN, _NAN, False
    between = float(np.asarray(res.cov_re)[0, 0])
    within = float(res.scale)
    ok = bool(res.converged) and math.isfinite(between) and math.isfinite(within)
    return between, within, ok


def _reml_components(
    values: np.ndarray,
    groups: np.ndarray,
    counts: np.ndarray,
    means: np.ndarray,
    ssw: np.ndarray,
    *,
    ci: float,
    n_boot: int,
    seed: int,
) -> VarianceComponents:
    """REML point estimate (MixedLM) with a cluster bootstrap over groups for all intervals."""
    a = counts.size
    b_fast, w_fast, g_fast = (float(v) for v in _reml_oneway(counts, means, ssw))
    if float(np.sum(ssw)) == 0.0:
        between, within = b_fast, w_fast  # MixedLM cannot fit sigma2_within = 0; this is the REML limit
    else:
        between, within, ok = _mixedlm_reml(values, groups)
        if ok and within > 0.0:
            ssw_sum, big_n = np.sum(ssw), np.sum(counts)
            f_mixed = float(
                _reml_objective(np.asarray(max(between, 0.0) / within), counts, means, ssw_sum, big_n)
            )
            f_fast = float(_reml_objective(np.asarray(g_fast), counts, means, ssw_sum, big_n))
            # MixedLM can stop short near the boundary; keep whichever reaches the higher likelihood.
            ok = f_mixed <= f_fast + 1e-7 * max(1.0, abs(f_fast))
        if not ok:
            between, within = b_fast, w_fast
    truncated = within > 0.0 and between <= 1e-8 * within
    if truncated:
        between = 0.0
    between, within = max(between, 0.0), max(within, 0.0)
    total, sh_b, sh_w, zero_total = _shares(between, within)

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(idx, axis, -1)
        b, w, _ = _reml_oneway(counts[idx], means[idx], ssw[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            tot = b + w
            sb = np.where(tot > 0, b / tot, np.nan)
        return np.stack([b, w, sb, 1.0 - sb])

    point = np.array([between, within, sh_b, sh_w])
    boot_kind = "BCa"
    if zero_total:
        intervals = [(0.0, 0.0), (0.0, 0.0), _NAN_PAIR, _NAN_PAIR]
    else:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (np.arange(a),),
                statistic,
                n_resamples=n_boot,
                confidence_level=ci,
                method="BCa",
                vectorized=True,
                rng=np.random.default_rng(seed),
            )
        lows = np.atleast_1d(res.confidence_interval.low)
        highs = np.atleast_1d(res.confidence_interval.high)
        dist = np.asarray(res.bootstrap_distribution)
        tail = (1.0 - ci) / 2.0
        intervals = []
        for k in range(4):
            lo_k, hi_k = float(lows[k]), float(highs[k])
            if not (math.isfinite(lo_k) and math.isfinite(hi_k)):
                finite = dist[k][np.isfinite(dist[k])]
                if finite.size and np.ptp(finite) > 0:
                    lo_k, hi_k = (float(v) for v in np.quantile(finite, [tail, 1.0 - tail]))
                    boot_kind = "BCa, percentile where BCa was undefined"
                else:
                    lo_k = hi_k = float(point[k])
            intervals.append((lo_k, hi_k))
    return VarianceComponents(
        between=between,
        within=within,
        total=total,
        share_between=sh_b,
        share_within=sh_w,
        between_ci=intervals[0],
        within_ci=intervals[1],
        share_between_ci=intervals[2],
        share_within_ci=intervals[3],
        method="reml",
        truncated=bool(truncated),
        zero_total=zero_total,
        n_groups=a,
        n_obs=int(values.size),
        ci_method=(
            f"cluster bootstrap over groups (trained models resampled with replacement, REML refit; "
            f"{boot_kind}, {n_boot} resamples)"
        ),
    )


def variance_components(
    values: ArrayLike,
    groups: ArrayLike,
    *,
    ci: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    method: Literal["auto", "anova", "reml"] = "auto",
) -> VarianceComponents:
    """Split accuracy variance into between-model (training) and within-model (test-pass) parts.

    ``method="auto"`` uses the ANOVA estimator when every group has the same number of passes (where
    it has exact intervals and equals REML unless truncated) and REML (statsmodels MixedLM) otherwise.
    Intervals: balanced ANOVA -> chi-square (within), exact F interval for the ICC (shares), modified
    large-sample interval (between); REML -> cluster bootstrap over groups (``n_boot``, ``seed``; like
    any bootstrap it runs a little narrow with few models: ~90% actual coverage for nominal 95% at 20).

    Raises ValueError for fewer than two groups (no between-model variance is estimable from one
    trained model) and when no group has two or more passes (within and between are confounded).
    """
    ci = _check_ci(ci)
    if method not in ("auto", "anova", "reml"):
        raise ValueError(f"method must be 'auto', 'anova' or 'reml', got {method!r}")
    y = _as_1d_finite(values, "values")
    g = np.asarray(groups).reshape(-1)
    counts, means, ssw = _group_stats(y, g)
    a = counts.size
    if a < 2:
        raise ValueError(
            "variance_components needs at least 2 groups (trained models): between-model variance is "
            f"not estimable from {a}"
        )
    if counts.sum() - a < 1:
        raise ValueError(
            "variance_components needs at least one group with 2+ observations (test passes): with "
            "one pass per model, within- and between-model variance cannot be separated"
        )
    balanced = bool(np.all(counts == counts[0]))
    if method == "anova" and not balanced:
        raise ValueError(
            "the ANOVA estimator here needs a balanced design (equal passes per group); use 'reml'"
        )
    use_anova = method == "anova" or (method == "auto" and balanced)
    if use_anova:
        return _anova_components(counts, means, ssw, ci)
    return _reml_components(y, g, counts, means, ssw, ci=ci, n_boot=n_boot, seed=seed)


# --------------------------------------------------------------------------------------------------
# flip rates and churn
# --------------------------------------------------------------------------------------------------


def flip_rate(preds: ArrayLike) -> float:
    """Mean over all pairs of passes of the fraction of samples whose predicted class differs.

    ``preds`` is (K passes, N samples).  Per sample, the number of agreeing pairs is
    sum_c C(count_c, 2); it is found by sorting each column and counting, for every element, the
    earlier equal elements of its run, so the cost is O(K N log K) with no (N, classes) table.
    K < 2 -> nan.
    """
    p = np.asarray(preds)
    if p.ndim != 2:
        raise ValueError(f"preds must be 2-D (passes, samples), got shape {p.shape}")
    k, n = p.shape
    if k < 2:
        return _NAN
    if n == 0:
        raise ValueError("preds has no samples")
    s = np.sort(p, axis=0)
    starts = np.ones_like(s, dtype=bool)
    starts[1:] = s[1:] != s[:-1]
    rows = np.arange(k)[:, None]
    run_start = np.maximum.accumulate(np.where(starts, rows, 0), axis=0)
    agreeing = int(np.sum(rows - run_start))  # sum over samples of sum_c C(count_c, 2)
    pairs = k * (k - 1) // 2
    return 1.0 - agreeing / (pairs * n)


def churn(a: ArrayLike, b: ArrayLike) -> float:
    """Fraction of samples on which two prediction vectors disagree."""
    x, y = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"prediction vectors differ in length ({x.size} vs {y.size})")
    if x.size == 0:
        raise ValueError("prediction vectors are empty")
    return float(np.mean(x != y))


def _stack_preds(preds_by_model: ArrayLike | Sequence[ArrayLike]) -> np.ndarray:
    p = np.asarray(preds_by_model)
    if p.ndim != 2:
        raise ValueError(f"preds_by_model must be (models, samples), got shape {p.shape}")
    return p


def churn_matrix(preds_by_model: ArrayLike | Sequence[ArrayLike]) -> np.ndarray:
    """(M, M) pairwise churn between trained models' eval-mode predictions (zeros on the diagonal)."""
    p = _stack_preds(preds_by_model)
    m = p.shape[0]
    out = np.zeros((m, m))
    for i in range(m - 1):
        out[i, i + 1 :] = np.mean(p[i + 1 :] != p[i], axis=1)
    return out + out.T


def mean_churn(preds_by_model: ArrayLike | Sequence[ArrayLike]) -> float:
    """Mean pairwise churn between trained models; equals :func:`flip_rate` of the stacked predictions."""
    return flip_rate(_stack_preds(preds_by_model))


# --------------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Two independent samples of accuracies (one per trained model) for models/configs A and B."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    diff: float
    diff_ci: tuple[float, float]
    diff_ci_method: str
    welch_t: float
    welch_p: float
    mannwhitney_u: float
    mannwhitney_p: float
    p_a_gt_b: float
    levene_stat: float
    levene_p: float

    def as_dict(self) -> dict[str, Any]:
        return _flat_dict(self)


def _diff_of_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def compare(
    a: ArrayLike, b: ArrayLike, *, ci: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> Comparison:
    """Is A better than B, by how much, and do their spreads differ?

    Welch's t (no equal-variance assumption), Mann-Whitney U with the probability of superiority
    P(A > B) + P(A = B)/2 = U / (n_a n_b), a two-sample bootstrap CI of the mean difference, and
    Brown-Forsythe (Levene, median-centred) for the spreads.  Undefined tests (n < 2, zero variance)
    give nan quietly.
    """
    ci = _check_ci(ci)
    x, y = _as_1d_finite(a, "a"), _as_1d_finite(b, "b")
    mean_a, mean_b = float(np.mean(x)), float(np.mean(y))
    diff = mean_a - mean_b
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        lo, hi, ci_method = diff, diff, "degenerate"
    else:
        lo, hi, ci_method = _bootstrap_ci(
            (x, y), _diff_of_means, diff, ci=ci, n_resamples=n_resamples, seed=seed
        )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        t_res = stats.ttest_ind(x, y, equal_var=False)
        u_res = stats.mannwhitneyu(x, y, alternative="two-sided")
        lev = stats.levene(x, y, center="median") if min(x.size, y.size) >= 2 else (_NAN, _NAN)
    u = float(u_res.statistic)
    return Comparison(
        n_a=int(x.size),
        n_b=int(y.size),
        mean_a=mean_a,
        mean_b=mean_b,
        std_a=float(np.std(x, ddof=1)) if x.size > 1 else _NAN,
        std_b=float(np.std(y, ddof=1)) if y.size > 1 else _NAN,
        diff=diff,
        diff_ci=(lo, hi),
        diff_ci_method=ci_method,
        welch_t=float(t_res.statistic),
        welch_p=float(t_res.pvalue),
        mannwhitney_u=u,
        mannwhitney_p=float(u_res.pvalue),
        p_a_gt_b=u / (x.size * y.size),
        levene_stat=float(lev[0]),
        levene_p=float(lev[1]),
    )


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values over the finite entries; nan stays nan."""
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def compare_all(samples: Mapping[str, ArrayLike], **kw: Any) -> pd.DataFrame:
    """:func:`compare` for every pair (in the mapping's order), with Holm-adjusted p-values.

    Holm controls the family-wise error over all pairs without assuming independent tests, which
    pairwise comparisons sharing a model are not.  Columns: ``a``, ``b``, the Comparison fields
    (``diff_ci`` also as ``diff_ci_low`` / ``diff_ci_high``), ``welch_p_holm``, ``mannwhitney_p_holm``.
    """
    rows = []
    for name_a, name_b in itertools.combinations(samples, 2):
        rows.append({"a": name_a, "b": name_b, **compare(samples[name_a], samples[name_b], **kw).as_dict()})
    if not rows:
        cols = ["a", "b", *_flat_dict(_EMPTY_COMPARISON).keys(), "welch_p_holm", "mannwhitney_p_holm"]
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    df["welch_p_holm"] = _holm(df["welch_p"].to_numpy(dtype=float))
    df["mannwhitney_p_holm"] = _holm(df["mannwhitney_p"].to_numpy(dtype=float))
    return df


_EMPTY_COMPARISON = Comparison(0, 0, *([_NAN] * 5), _NAN_PAIR, "", *([_NAN] * 7))


def spread_test(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """Brown-Forsythe (median-centred Levene) statistic and p-value: do two spreads differ?

    Median centring keeps the test honest for the skewed, bounded accuracy distributions of seed
    sweeps, where the mean-centred Levene and the F test are too liberal.
    """
    x, y = _as_1d_finite(a, "a"), _as_1d_finite(b, "b")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = stats.levene(x, y, center="median")
    return float(res.statistic), float(res.pvalue)


# --------------------------------------------------------------------------------------------------
# planning and one-source-at-a-time studies
# --------------------------------------------------------------------------------------------------


def replicates_needed(std: float, diff: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Replicates (trained models) per group to detect ``diff`` with a two-sided two-sample t-test.

    Uses statsmodels' TTestIndPower with effect size |diff| / std, rounded up; never fewer than 2
    (a t-test needs them).  std == 0 -> 2; diff == 0 -> ValueError (no sample size detects nothing).
    """
    if not (math.isfinite(std) and math.isfinite(diff)):
        raise ValueError(f"std and diff must be finite, got std={std!r}, diff={diff!r}")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    if diff == 0:
        raise ValueError("diff must be non-zero: no number of replicates detects a zero difference")
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise ValueError(f"alpha and power must lie in (0, 1), got alpha={alpha!r}, power={power!r}")
    if std == 0:
        return 2
    analysis = TTestIndPower()
    effect = abs(diff) / std
    if analysis.power(effect_size=effect, nobs1=2, alpha=alpha, ratio=1.0, alternative="two-sided") >= power:
        return 2  # the solver's bracket starts above 2 and fails to converge for huge effects
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nobs = analysis.solve_power(
            effect_size=effect, nobs1=None, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
        )
    nobs = float(np.asarray(nobs).reshape(-1)[0])
    if not math.isfinite(nobs):
        raise RuntimeError(f"TTestIndPower did not converge for effect size {effect:.3g}")
    return max(2, math.ceil(nobs - 1e-9))


def per_source_spread(
    values: ArrayLike,
    sources: ArrayLike,
    *,
    ci: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per source of randomness (one-source-at-a-time study): Spread fields + variance share.

    ``share_of_sum`` is each source's variance over the sum of the sources' variances: only a rough
    attribution, since sources varied one at a time need not add up to the all-sources variance.
    Rows follow the sources' first appearance; sources with n < 2 get nan variance and share.
    """
    y = _as_1d_finite(values, "values")
    src = np.asarray(sources).reshape(-1)
    if src.size != y.size:
        raise ValueError(f"values and sources differ in length ({y.size} vs {src.size})")
    labels = pd.unique(pd.Series(src))
    rows = []
    for label in labels:
        s = spread(y[src == label], ci=ci, n_resamples=n_resamples, seed=seed)
        rows.append({"source": label, **s.as_dict(), "variance": s.std**2})
    df = pd.DataFrame(rows)
    var = df["variance"].to_numpy(dtype=float)
    total = np.nansum(var)
    df["share_of_sum"] = var / total if total > 0 else np.nan
    return df
