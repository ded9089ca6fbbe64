"""Was it a lucky seed? A claimed number held against a condition's seed distribution.

Why: a paper quotes one number; the seeds give a distribution. Each function here answers one question
about a claim c given n seed values x (higher is better; pass `higher=False` for a lower-is-better metric,
which negates both). Under a normal seed model N(mu, sigma) every answer is a monotone function of the
standardized claim delta = (c - mu) / sigma, and sqrt(n) (c - xbar) / s follows a noncentral t with n - 1
degrees of freedom and noncentrality sqrt(n) delta, so inverting that noncentral t gives an exact 95%
interval for delta and thus for the percentile Phi(delta), for the k whose expected best equals c, and for
the probability that the best of n seeds reaches c. The expected best of k seeds is estimated without a
model by the U-statistic over order statistics (unbiased for any distribution; Tang et al. 2020 call the
plug-in of Dodge et al. 2019 biased), with the exact normal-model (noncentral t) interval for
mu + e_k sigma. Under skewed seeds the normal-model intervals lose coverage as n grows
(benchmarks/luck_coverage.py measures where).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, optimize, special, stats
from statsmodels.stats.proportion import proportion_confint

from seedvar.stats import LEVEL

K_MAX = 1e6  # the largest best-of k reported; beyond it a claim is "out of reach"


def _values(values: ArrayLike, higher: bool) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError(f"a claim needs at least 2 seed values, got {x.size}")
    return x if higher else -x


def expected_max_std(k: float) -> float:
    """E[max of k standard normals] for real k >= 1 (k Phi^(k-1) phi integrated): the normal model's e_k."""
    if k <= 1.0:
        return 0.0
    # E[M] = int_0^inf (1 - Phi^k) - int_-inf^0 Phi^k: smooth integrands, split where 1 - Phi^k turns
    up = lambda z: -np.expm1(k * special.log_ndtr(z))  # noqa: E731
    down = lambda z: np.exp(k * special.log_ndtr(z))  # noqa: E731
    peak = max(float(stats.norm.isf(1.0 / k)), 0.0)
    pos = integrate.quad(up, 0.0, peak)[0] + integrate.quad(up, peak, np.inf)[0]
    return float(pos - integrate.quad(down, -np.inf, 0.0)[0])


def best_of_k(delta: float) -> float:
    """The real k >= 1 whose expected best of k seeds lies delta seed-stds above the mean (1 at or below)."""
    if not math.isfinite(delta):
        return K_MAX if delta > 0 else 1.0
    if delta <= 0.0:
        return 1.0
    if expected_max_std(K_MAX) <= delta:
        return K_MAX
    return math.exp(
        optimize.brentq(lambda lk: expected_max_std(math.exp(lk)) - delta, 0.0, math.log(K_MAX), xtol=1e-10)
    )


def delta_interval(
    values: ArrayLike, claim: float, level: float = LEVEL, higher: bool = True
) -> tuple[float, float, float]:
    """Point and exact normal-model interval of delta = (claim - mu) / sigma, by inverting the noncentral t."""
    x = _values(values, higher)
    c = claim if higher else -claim
    n = x.size
    m, s = float(x.mean()), float(x.std(ddof=1))
    if s == 0.0:
        d = math.copysign(math.inf, c - m) if c != m else 0.0
        return d, d, d
    t_obs = math.sqrt(n) * (c - m) / s
    a = (1.0 - level) / 2.0
    rn = math.sqrt(n)

    def solve(p: float) -> float:
        def g(d: float) -> float:  # decreasing in d; scipy's nct gives NaN far in a tail, where it is 0 or 1
            v = float(stats.nct.cdf(t_obs, n - 1, rn * d))
            return (v if math.isfinite(v) else float(t_obs > rn * d)) - p

        lo, hi = -1.0, 1.0
        while g(lo) < 0:
            lo *= 2
        while g(hi) > 0:
            hi *= 2
        return float(optimize.brentq(g, lo, hi, xtol=1e-10))

    return (c - m) / s, solve(1.0 - a), solve(a)


@dataclass(frozen=True)
class Claim:
    """One claim held against one condition's seeds; percentiles in percent."""

    claim: float
    n: int
    percentile: float
    percentile_ci: tuple[float, float]
    best_of: float
    best_of_ci: tuple[float, float]
    p_best_reaches: float
    p_best_reaches_ci: tuple[float, float]
    share_at_or_above: float
    share_ci: tuple[float, float]


def hold(values: ArrayLike, claim: float, level: float = LEVEL, higher: bool = True) -> Claim:
    """All answers for one claim: percentile, best-of k, P(best of own n reaches it), share of seeds reaching it."""
    x = _values(values, higher)
    c = claim if higher else -claim
    n = x.size
    d, dlo, dhi = delta_interval(x, c, level, higher=True)
    pct = lambda v: 100.0 * float(stats.norm.cdf(v))  # noqa: E731
    reach = lambda v: float(-np.expm1(n * special.log_ndtr(v)))  # noqa: E731  1 - Phi(v)^n, falls with v
    hits = int((x >= c).sum())
    lo, hi = proportion_confint(hits, n, alpha=1.0 - level, method="beta")
    return Claim(
        claim=float(claim),
        n=n,
        percentile=pct(d),
        percentile_ci=(pct(dlo), pct(dhi)),
        best_of=best_of_k(d),
        best_of_ci=(best_of_k(dlo), best_of_k(dhi)),
        p_best_reaches=reach(d),
        p_best_reaches_ci=(reach(dhi), reach(dlo)),
        share_at_or_above=hits / n,
        share_ci=(float(lo), float(hi)),
    )


def expected_max_ustat(values: ArrayLike, k: int, higher: bool = True) -> float:
    """Unbiased E[best of k] from n >= k seeds: sum_i C(i-1, k-1) / C(n, k) x_(i) over the sorted values."""
    x = np.sort(_values(values, higher))
    n = x.size
    if not 1 <= k <= n:
        raise ValueError(f"the expected best of k needs 1 <= k <= n={n}, got k={k}")
    i = np.arange(1, n + 1)
    w = np.exp(
        special.gammaln(i)
        - special.gammaln(i - k + 1)
        - special.gammaln(k)
        - (special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1))
    )
    w[i < k] = 0.0
    est = float(w @ x)
    return est if higher else -est


def expected_max_dodge(values: ArrayLike, k: int, higher: bool = True) -> float:
    """Dodge et al. (2019)'s plug-in: E[max of k draws with replacement from the n values] (biased low)."""
    x = np.sort(_values(values, higher))
    n = x.size
    i = np.arange(1, n + 1)
    w = (i / n) ** k - ((i - 1) / n) ** k
    est = float(w @ x)
    return est if higher else -est


def expected_max_interval(
    values: ArrayLike, k: float, level: float = LEVEL, higher: bool = True
) -> tuple[float, float]:
    """Exact normal-model interval of mu + e_k sigma: (xbar - theta) sqrt(n) / s is noncentral t(n-1, -sqrt(n) e_k)."""
    x = _values(values, higher)
    n = x.size
    m, s = float(x.mean()), float(x.std(ddof=1))
    nc = -math.sqrt(n) * expected_max_std(k)
    a = (1.0 - level) / 2.0
    q_lo, q_hi = stats.nct.ppf([a, 1.0 - a], n - 1, nc)
    lo, hi = m - s * q_hi / math.sqrt(n), m - s * q_lo / math.sqrt(n)
    return (float(lo), float(hi)) if higher else (float(-hi), float(-lo))
