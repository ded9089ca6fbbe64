#!/usr/bin/env python3
"""Was it a lucky seed: the claim's intervals and the expected-best estimators, simulated with known truth.

    .venv/bin/python benchmarks/luck_coverage.py               # 2,000 studies per cell
    .venv/bin/python benchmarks/luck_coverage.py --reps 300    # quicker, noisier

Seeds drawn from a normal, a left-skewed and a right-skewed distribution (gamma with shape 2, standardized;
mean 95, std 1) at 5, 10 and 30 seeds; the claim is the true 93.32nd percentile (1.5 stds above the mean
under normality). Prints the coverage of each 95% interval (percentile, best-of k, P(best of n reaches it),
expected best of 5, Clopper-Pearson share) and the bias of the expected best of 5 (the unbiased
order-statistic U-statistic against Dodge et al.'s plug-in). Percentile, best-of k and P(best of n) are
monotone in one normal-model interval of delta, so each is checked by mapping its true value onto delta.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import integrate, optimize, stats
from statsmodels.stats.proportion import proportion_confint

from seedvar.stats import luck

Q = stats.norm.cdf(1.5)  # the claim's true percentile
K = 5  # the expected best of K


class Left:
    """95 minus a standardized gamma: a few much worse seeds."""

    def __init__(self) -> None:
        self.g = stats.gamma(2.0, loc=-math.sqrt(2.0), scale=1.0 / math.sqrt(2.0))  # mean 0, std 1

    def rvs(self, size: int, random_state: np.random.Generator) -> np.ndarray:
        return 95.0 - self.g.rvs(size=size, random_state=random_state)

    def ppf(self, q: float) -> float:
        return 95.0 - float(self.g.ppf(1.0 - q))

    def cdf(self, x: float) -> float:
        return float(self.g.sf(95.0 - x))


def expected_max(dist, k: float) -> float:  # noqa: ANN001
    """E[max of k] under the true distribution: integral of the quantile function weighted by k u^(k-1)."""
    f = lambda u: float(dist.ppf(u)) * k * u ** (k - 1)  # noqa: E731
    return float(integrate.quad(f, 1e-12, 1.0 - 1e-12, limit=400, points=[1.0 - 1.0 / k])[0])


def best_of_true(dist, claim: float) -> float:  # noqa: ANN001
    """The true real k >= 1 with E[max of k] = claim."""
    return math.exp(
        optimize.brentq(lambda lk: expected_max(dist, math.exp(lk)) - claim, 0.0, math.log(500.0))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=38)
    args = ap.parse_args()
    cases = {
        "normal": stats.norm(95.0, 1.0),
        "skew-left": Left(),
        "skew-right": stats.gamma(2.0, loc=95.0 - math.sqrt(2.0), scale=1.0 / math.sqrt(2.0)),
    }
    print(f"reps={args.reps} per cell; 95% intervals; claim at the true {100 * Q:.2f}th percentile")
    print("seeds      n  percentile  best_of  p_best  exp_max5  share(CP)  bias_U5  bias_Dodge5")
    for name, dist in cases.items():
        rng = np.random.default_rng(args.seed)
        claim = float(dist.ppf(Q))
        em = expected_max(dist, K)
        # the true k with E[max of k] = claim, and its normal-model delta
        k_true = best_of_true(dist, claim)
        d_best = luck.expected_max_std(k_true)
        for n in (5, 10, 30):
            p_true = 1.0 - Q**n
            d_reach = float(stats.norm.ppf((1.0 - p_true) ** (1.0 / n)))
            hits = np.zeros(5)
            bu, bd = [], []
            for _ in range(args.reps):
                x = dist.rvs(size=n, random_state=rng)
                _, lo, hi = luck.delta_interval(x, claim)
                elo, ehi = luck.expected_max_interval(x, K) if n >= K else (math.nan, math.nan)
                share = int((x >= claim).sum())
                slo, shi = proportion_confint(share, n, method="beta")
                hits += [
                    lo <= stats.norm.ppf(Q) <= hi,
                    lo <= d_best <= hi,
                    lo <= d_reach <= hi,
                    elo <= em <= ehi,
                    slo <= 1.0 - Q <= shi,
                ]
                if n >= K:
                    bu.append(luck.expected_max_ustat(x, K) - em)
                    bd.append(luck.expected_max_dodge(x, K) - em)
            c = 100.0 * hits / args.reps
            print(
                f"{name:10s} {n:2d}  {c[0]:9.1f}%  {c[1]:6.1f}%  {c[2]:5.1f}%  {c[3]:7.1f}%  {c[4]:8.1f}%"
                f"  {np.mean(bu):+7.3f}  {np.mean(bd):+10.3f}"
            )
        print(f"{'':10s}    (truth: claim {claim:.3f}, best of k={k_true:.2f}, E[best of {K}]={em:.3f})")


if __name__ == "__main__":
    main()
