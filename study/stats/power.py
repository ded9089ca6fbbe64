"""How many seeds tell a difference apart: the power of a two-sided two-sample t-test, from the noncentral
t distribution, and the smallest number of replicates per condition that reaches a target power.

statsmodels' `TTestIndPower.solve_power` comes back NaN for large effects (scipy's noncentral t cdf
fails in its far tail), so a very stable condition could end a report; here the power is scipy's
noncentral t where it is finite and the same integral computed directly where it is not, and n is found
by a bracket that always holds (power only grows with n).

Every seed count the report and a two-stage sweep print is sized at an upper confidence bound of the seed
std (Browne 1995), never at a 3-seed point estimate: sized at the observed std, a pair of 3-seed conditions
got the n that reaches 80% power in 42% of studies; at the 80% bound, in about 80%. With several conditions
the bound is taken once, on the std pooled over all of them (df = sum of n_i - 1), where Bartlett's test
finds their stds compatible (p >= 0.05); pair by pair only where it does not. Each condition taking the
bound of its worst pair instead spent 5x the runs the known std needs with 8 conditions (`Spread`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import integrate, stats

from seedvar.stats import ALPHA, POWER, UPPER  # noqa: F401 (re-exported)
from seedvar.stats.interval import NAN

# the share of simulated studies (normal seeds, 3-10 per condition, 2 or 8 conditions) in which a seed count
# sized at the bound reaches POWER: benchmarks/coverage.py, the README's table; tests/test_coverage.py holds it
REACHED = "about 80%"


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


def nct_cdf(t: float, df: float, nc: float) -> float:
    """P(T <= t) of a noncentral t, finite wherever scipy's is not (its far tails)."""
    return 1.0 - _tail(t, df, nc, upper=True)


def power(n: int, effect: float, alpha: float) -> float:
    """Power of a two-sided two-sample t-test at level `alpha` with `n` replicates per group and a true
    difference of `effect` standard deviations."""
    if n < 2:
        raise ValueError(f"a two-sample t-test needs n >= 2 per group, got {n}")
    df = 2.0 * n - 2.0
    nc = abs(effect) * math.sqrt(n / 2.0)
    t = float(stats.t.isf(alpha / 2.0, df))
    return min(_tail(t, df, nc, upper=True) + _tail(t, df, nc, upper=False), 1.0)


def replicates_needed(std: float, diff: float, *, alpha: float = ALPHA, target: float = POWER) -> int:
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


def pair_replicates(sd: float, diff: float, pairs: int, alpha: float = ALPHA) -> int:
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


def bartlett(stds: Mapping[str, float], ns: Mapping[str, int]) -> float:
    """Bartlett's test that conditions share one seed variance, from their stds and seed counts (scipy's
    `bartlett` wants the raw values; here the stds are the floored ones the intervals use). nan when a
    std is 0 or fewer than 2 conditions have 2+ seeds."""
    keys = [k for k in stds if ns[k] >= 2]
    if len(keys) < 2 or any(not stds[k] > 0 for k in keys):
        return NAN
    df = {k: ns[k] - 1 for k in keys}
    total = sum(df.values())
    pooled = sum(df[k] * stds[k] ** 2 for k in keys) / total
    stat = total * math.log(pooled) - sum(df[k] * math.log(stds[k] ** 2) for k in keys)
    stat /= 1 + (sum(1 / d for d in df.values()) - 1 / total) / (3 * (len(keys) - 1))
    return float(stats.chi2.sf(stat, len(keys) - 1))


@dataclass(frozen=True)
class Spread:
    """The seed stds that seed counts are sized at: one std pooled over every condition, at its upper
    confidence bound, where Bartlett's test finds them compatible; else each pair's pooled std at its own
    bound. `confidence` None sizes at the estimates themselves (--target-std pilot)."""

    stds: dict[str, float]  # each condition's seed std (floored at its resolution)
    ns: dict[str, int]
    pooled: bool
    bartlett_p: float
    confidence: float | None = UPPER

    @classmethod
    def of(cls, stds: Mapping[str, float], ns: Mapping[str, int], confidence: float | None = UPPER) -> Spread:
        kept = {k: float(v) for k, v in stds.items() if ns[k] >= 2 and math.isfinite(v)}
        counts = {k: int(ns[k]) for k in kept}
        p = bartlett(kept, counts)
        return cls(kept, counts, bool(len(kept) > 1 and p >= ALPHA), p, confidence)

    def _bound(self, var: float, df: int) -> float:
        sd = math.sqrt(var)
        return upper_std(sd, df, self.confidence) if self.confidence and sd > 0 else sd

    @property
    def pooled_std(self) -> float:
        """The std pooled over every condition (df = sum of n_i - 1), at its bound."""
        df = sum(n - 1 for n in self.ns.values())
        if df < 1:
            return NAN
        return self._bound(sum((self.ns[k] - 1) * s**2 for k, s in self.stds.items()) / df, df)

    def pair(self, a: str, b: str) -> float:
        """The std a pair's seed count is sized at."""
        if self.pooled:
            return self.pooled_std
        df = self.ns[a] + self.ns[b] - 2
        var = ((self.ns[a] - 1) * self.stds[a] ** 2 + (self.ns[b] - 1) * self.stds[b] ** 2) / df
        return self._bound(var, df)

    def condition(self, a: str) -> float:
        """The std a condition's seed count is sized at, against a condition of the same spread."""
        return self.pooled_std if self.pooled else self._bound(self.stds[a] ** 2, self.ns[a] - 1)

    def how(self) -> str:
        """How the std was bounded, in words."""
        bound = (
            f"the {self.confidence:.0%} upper confidence bound of the seed std (Browne 1995)"
            if self.confidence
            else "the seed std itself"
        )
        if self.pooled:
            return (
                f"{bound}, pooled over the {len(self.stds)} conditions (Bartlett's test finds their stds "
                f"compatible, p = {self.bartlett_p:.2g})"
            )
        why = (
            f"Bartlett's test finds their stds incompatible, p = {self.bartlett_p:.2g}"
            if math.isfinite(self.bartlett_p)
            else "one condition alone"
            if len(self.stds) < 2
            else "a condition has no spread to pool"
        )
        return f"{bound}, pair by pair ({why})"

    def replicates(self, diff: float, pairs: int) -> dict[str, int]:
        """Per condition, replicates so that every pair `diff` apart is detected with power POWER at
        ALPHA / pairs: the pooled n where the stds pool, else the largest n of the pairs a condition is in."""
        names = list(self.stds)
        if self.pooled:  # one std for every pair: one n
            return dict.fromkeys(names, max(2, pair_replicates(self.pooled_std, diff, pairs)))
        need = dict.fromkeys(names, 2)
        for a, b in itertools.combinations(names, 2):
            n = pair_replicates(self.pair(a, b), diff, pairs)
            need[a], need[b] = max(need[a], n), max(need[b], n)
        return need
