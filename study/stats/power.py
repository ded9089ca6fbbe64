"""How many seeds tell a difference apart: the power of a two-sided two-sample t-test, from the noncentral
t distribution, and the smallest number of replicates per condition that reaches a target power.

statsmodels' `TTestIndPower.solve_power` comes back NaN for large effects (scipy's noncentral t cdf
fails in its far tail), so a very stable condition could end a report; here the power is scipy's
noncentral t where it is finite and the same integral computed directly where it is not, and n is found
by a bracket that always holds (power only grows with n).
"""

from __future__ import annotations

import math

from scipy import integrate, stats

POWER = 0.8  # the power every seed count here is sized for
UPPER = 0.8  # --target-diff: the one-sided confidence of the upper bound on the pilot's std (Browne 1995)


def _tail(t: float, df: float, nc: float, upper: bool) -> float:
    """P(T > t) (upper) or P(T < -t) of a noncentral t: scipy's, else E over the chi-square of
    Phi(+-(nc - t sqrt(V/df)))."""
    value = stats.nct.sf(t, df, nc) if upper else stats.nct.cdf(-t, df, nc)
    if math.isfinite(value) and 0.0 <= value <= 1.0:
        return float(value)
    sign = 1.0 if upper else -1.0

    def integrand(u: float) -> float:
        s = math.sqrt(stats.chi2.ppf(u, df) / df)
        return float(stats.norm.cdf(sign * nc - t * s))

    value, _ = integrate.quad(integrand, 0.0, 1.0, limit=200)
    return min(max(float(value), 0.0), 1.0)


def power(n: int, effect: float, alpha: float) -> float:
    """Power of a two-sided two-sample t-test at level `alpha` with `n` replicates per group and a true
    difference of `effect` standard deviations."""
    if n < 2:
        raise ValueError(f"a two-sample t-test needs n >= 2 per group, got {n}")
    df = 2.0 * n - 2.0
    nc = abs(effect) * math.sqrt(n / 2.0)
    t = float(stats.t.isf(alpha / 2.0, df))
    return min(_tail(t, df, nc, upper=True) + _tail(t, df, nc, upper=False), 1.0)


def replicates_needed(std: float, diff: float, *, alpha: float = 0.05, target: float = POWER) -> int:
    """Replicates per group for a two-sided two-sample t-test at `alpha` to detect `diff` with power
    `target`, at the seed std `std`; never fewer than 2. std == 0 -> 2; diff == 0 -> ValueError."""
    if not (math.isfinite(std) and math.isfinite(diff)):
        raise ValueError(f"std and diff must be finite, got std={std!r}, diff={diff!r}")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    if diff == 0:
        raise ValueError("diff must be non-zero: no number of replicates detects a zero difference")
    if not (0.0 < alpha < 1.0 and 0.0 < target < 1.0):
        raise ValueError(f"alpha and power must lie in (0, 1), got alpha={alpha!r}, power={target!r}")
    if std == 0:
        return 2
    effect = abs(diff) / std
    if power(2, effect, alpha) >= target:
        return 2
    hi = 4
    while power(hi, effect, alpha) < target:  # bracket: power(lo) < target <= power(hi)
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power(mid, effect, alpha) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def pooled_std(std_a: float, std_b: float) -> float:
    """Two conditions' seed stds pooled with equal weight: the std a pair's seed count is sized at."""
    return math.sqrt((std_a**2 + std_b**2) / 2)


def pair_replicates(sd: float, diff: float, pairs: int, alpha: float = 0.05) -> int:
    """Replicates per condition that detect `diff` in one of `pairs` comparisons: power POWER, two-sided
    at alpha / pairs (Bonferroni, the strictest step of the Holm correction)."""
    return replicates_needed(sd, diff, alpha=alpha / pairs)


def upper_std(s: float, df: int, confidence: float = UPPER) -> float:
    """The one-sided upper confidence bound on a std estimated with `df` degrees of freedom:
    s * sqrt(df / chi2(1 - confidence, df)). Sizing at it instead of s itself (Browne 1995) gives the
    target power in about `confidence` of studies; sizing at s gives it in about half."""
    if df < 1:
        raise ValueError(f"an upper bound needs df >= 1, got {df}")
    return s * math.sqrt(df / stats.chi2.ppf(1.0 - confidence, df))
