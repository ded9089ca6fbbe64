"""Variance components: how much of the spread is between trained models (training randomness) and
how much within a model across its test passes (test-time dropout), with confidence intervals.

Model (one trained model = one group, one test pass = one observation)::

    y_ij = mu + a_i + e_ij,   a_i ~ N(0, sigma2_between)  (training randomness: seed, data order, init)
                              e_ij ~ N(0, sigma2_within)   (test-time randomness: MC-dropout passes)

Balanced designs use the one-way ANOVA estimator with exact / modified large-sample intervals;
unbalanced ones REML (statsmodels MixedLM is the reference; a batched one-way REML refits the
cluster-bootstrap resamples quickly). Neither of those two estimators' intervals is in scipy or
statsmodels, so they are written here.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLM

from seedvar.analysis.spread import NAN, NAN_PAIR, as_1d_finite, check_ci, flat_dict


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
            return NAN, NAN, False
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
        intervals = [(0.0, 0.0), (0.0, 0.0), NAN_PAIR, NAN_PAIR]
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
    ci = check_ci(ci)
    if method not in ("auto", "anova", "reml"):
        raise ValueError(f"method must be 'auto', 'anova' or 'reml', got {method!r}")
    y = as_1d_finite(values, "values")
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
