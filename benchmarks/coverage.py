#!/usr/bin/env python3
"""How seedvar's numbers are checked: every interval and test a report prints, simulated with known truth at
3, 5, 10 and 30 seeds (passes nested in models, accuracies on the grid of a finite test set), through the
very functions the report calls (seedvar.stats).

    .venv/bin/python benchmarks/coverage.py              # 4,000 studies per cell: about 4 minutes on 2 cores
    .venv/bin/python benchmarks/coverage.py --reps 500   # quicker, noisier

Prints one row per check: what the report prints, its method, and the simulated coverage (of a 95%
interval) or level (of a test at 5%) at each number of seeds; the README's table "How seedvar's numbers
are checked" is this output. tests/test_coverage.py runs the same checks with fewer studies and asserts
each lies in its stated range (`Check.bounds`).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from seedvar.stats import twins
from seedvar.stats.compare import compare, compare_all
from seedvar.stats.components import equal_pass_variance_p, variance_components
from seedvar.stats.degenerate import at_chance
from seedvar.stats.interval import mean_interval, variance_interval
from seedvar.stats.power import POWER, Spread, pair_replicates, power
from seedvar.stats.sources import variance_ratio
from seedvar.stats.testnoise import split_seed_variance
from seedvar.stats.twostage import Target, decide, difference_replicates, stein_interval

SEEDS = (3, 5, 10, 30)
NOMINAL = (0.93, 0.97)  # the bar for a 95% interval
LEVEL = (0.03, 0.07)  # ... and for a test at 5%


@dataclass(frozen=True)
class Check:
    """One printed number, simulated: `run(n, reps, rng)` gives the share of simulated studies with n seeds
    whose interval covered the truth (or whose test rejected a true null). `bounds` is the range the
    rate must fall in at every n (NOMINAL or LEVEL unless the README states another)."""

    name: str
    method: str
    kind: str  # "coverage" | "level" | "power >= 0.8"
    run: Callable[[int, int, np.random.Generator], float]
    bounds: tuple[float, float] = NOMINAL
    seeds: tuple[int, ...] = SEEDS


def _hits(values: list[bool]) -> float:
    return float(np.mean(values))


# -- the interval of a mean over trained models ----------------------------------------------------------


def mean_normal(n: int, reps: int, rng: np.random.Generator) -> float:
    """Eval accuracy of n models ~ N(95, 1) points on 100,000 test samples (a grid far below the spread)."""
    return _hits(
        [_covers(mean_interval(rng.normal(95.0, 1.0, n), resolution=0.001), 95.0) for _ in range(reps)]
    )


def mean_near(errors: float) -> Callable[[int, int, np.random.Generator], float]:
    """Near 100%: 1,000 test samples, a mean of `errors` wrong per model (error rates gamma-distributed
    around it, std half the mean, errors binomial: below one error per model most models make none)."""

    def run(n: int, reps: int, rng: np.random.Generator) -> float:
        truth = 100 - errors / 10
        covered = []
        for _ in range(reps):
            wrong = rng.binomial(1000, np.minimum(rng.gamma(4.0, errors / 4 / 1000, n), 1.0))
            covered.append(_covers(mean_interval(100 - wrong / 10, resolution=0.1, bounds=(0, 100)), truth))
        return _hits(covered)

    return run


def _grid_truth(offset: np.ndarray, sd: float, step: float) -> np.ndarray:
    """The mean of N(offset, sd) rounded to a grid of `step`: what accuracies on that grid average to."""
    grid = np.arange(-60, 61) * step
    p = stats.norm.cdf((grid + step / 2 - offset[:, None]) / sd) - stats.norm.cdf(
        (grid - step / 2 - offset[:, None]) / sd
    )
    return (p * grid).sum(1)


def mean_on_grid(sd: float) -> Callable[[int, int, np.random.Generator], float]:
    """500 test samples (a 0.2-point grid) and a true seed std of `sd` points: accuracies are the grid
    points nearest to normal draws, and the truth is the mean of that discrete distribution."""

    def run(n: int, reps: int, rng: np.random.Generator) -> float:
        offset = rng.uniform(0, 0.2, reps)
        truth = _grid_truth(offset, sd, 0.2)
        x = np.round(rng.normal(offset[:, None], sd, (reps, n)) / 0.2) * 0.2
        return _hits([_covers(mean_interval(x[i], resolution=0.2), truth[i]) for i in range(reps)])

    return run


def _covers(m: object, truth: float) -> bool:
    return bool(m.ci_low - 1e-9 <= truth <= m.ci_high + 1e-9)


# -- variance components: seeds x 10 passes ----------------------------------------------------------------


def components(part: str) -> Callable[[int, int, np.random.Generator], float]:
    """n trained models x 10 train-mode passes: between-model std 1 point, within-model (dropout) 0.3."""
    sb, sw, k = 1.0, 0.3, 10
    truth = {"between": sb**2, "within": sw**2, "share_within": sw**2 / (sb**2 + sw**2)}[part]

    def run(n: int, reps: int, rng: np.random.Generator) -> float:
        g = np.repeat(np.arange(n), k)
        hits = []
        for _ in range(reps):
            y = (rng.normal(0, sb, n)[:, None] + rng.normal(0, sw, (n, k))).ravel()
            lo, hi = getattr(variance_components(y, g), f"{part}_ci")
            hits.append(lo <= truth <= hi)
        return _hits(hits)

    return run


# -- test-set noise: binomial test sets ---------------------------------------------------------------------

_GH = np.polynomial.hermite_e.hermegauss(60)


def _accuracy_of_skill(b: np.ndarray, mean_logit: float, sd_logit: float) -> np.ndarray:
    """A model of skill b: its accuracy over the whole test distribution (logit difficulty ~ N(mean, sd))."""
    x, w = _GH
    w = w / w.sum()
    return (special.expit(mean_logit + sd_logit * x[None, :] + np.asarray(b)[:, None]) * w).sum(1)


def share_of_test_set(n: int, reps: int, rng: np.random.Generator) -> float:
    """Each model tested on its own 1,000 samples (a split drawn per seed); sample j is right with
    probability expit(l_j + b_i), l_j ~ N(2.5, 1.5) its difficulty, b_i ~ N(0, 0.15) the model's skill.
    Truth: var(acc) = var(a(b)) + E[a(b)(1 - a(b))] / 1000, the second term the test set's part."""
    samples, tau, mq, sq = 1000, 0.15, 2.5, 1.5
    x, w = _GH
    w = w / w.sum()
    a = _accuracy_of_skill(tau * x, mq, sq)
    var_a = float((w * a**2).sum() - (w * a).sum() ** 2)
    test_part = float((w * a * (1 - a)).sum()) / samples
    truth = test_part / (var_a + test_part)
    labels = np.zeros(samples, dtype=int)
    hits = []
    for _ in range(reps):
        b = rng.normal(0, tau, n)
        logits = rng.normal(mq, sq, (n, samples)) + b[:, None]
        correct = (rng.random((n, samples)) < special.expit(logits)).astype(float)
        lo, hi = split_seed_variance(correct, labels, halvings=50).share_test_set_ci
        hits.append(lo <= truth <= hi)
    return _hits(hits)


# -- sources against all, comparisons -------------------------------------------------------------------------


def source_ratio(n: int, reps: int, rng: np.random.Generator) -> float:
    """A source's variance over the `all` variance, true ratio 0.5, n replicates each, normal accuracies."""
    return _hits(
        [
            (lambda r: r[0] <= 0.5 <= r[1])(
                variance_ratio(rng.normal(0, math.sqrt(0.5), n), rng.normal(0, 1, n)).ratio_ci
            )
            for _ in range(reps)
        ]
    )


def _heavy(rng: np.random.Generator, shape: tuple[int, ...] | int) -> np.ndarray:
    """Seeds of std 1, 10% of them 4 stds worse: the "a few bad seeds" of a real study."""
    return rng.normal(0, 1, shape) - 4.0 * (rng.random(shape) < 0.1)


HEAVY_VAR = 1 + 16 * 0.1 * 0.9  # the variance of `_heavy`'s seeds


def heavy_variance(n: int, reps: int, rng: np.random.Generator) -> float:
    """The seed variance's interval (the test-set share's basis) when 10% of seeds are 4 stds worse."""
    return _hits(
        [(lambda c: c[0] <= HEAVY_VAR <= c[1])(variance_interval(_heavy(rng, n)).ci) for _ in range(reps)]
    )


def heavy_source_ratio(n: int, reps: int, rng: np.random.Generator) -> float:
    """A source's variance over `all`, both with 10% of seeds 4 stds worse (true ratio 1)."""
    return _hits(
        [
            (lambda c: c[0] <= 1.0 <= c[1])(variance_ratio(_heavy(rng, n), _heavy(rng, n)).ratio_ci)
            for _ in range(reps)
        ]
    )


def unequal_passes(part: str, log_sd: float = 0.5) -> Callable[[int, int, np.random.Generator], float]:
    """n trained models x 10 dropout passes, between std 1, within 0.3 on average but each model's own pass
    std varying by a log-sd of `log_sd`: the dropout share's interval, or (part "test") how often
    Brown-Forsythe finds the pass spreads unequal (log_sd 0: its level)."""
    sb, sw, k = 1.0, 0.3, 10

    def run(n: int, reps: int, rng: np.random.Generator) -> float:
        hits = []
        for _ in range(reps):
            sds = sw * np.exp(rng.normal(0, log_sd, n) - log_sd**2)  # E[sd^2] = sw^2
            y = rng.normal(0, sb, n)[:, None] + rng.normal(0, 1, (n, k)) * sds[:, None]
            if part == "test":
                hits.append(equal_pass_variance_p(list(y)) < 0.05)
            else:
                lo, hi = variance_components(y.ravel(), np.repeat(np.arange(n), k)).share_within_ci
                hits.append(lo <= sw**2 / (sb**2 + sw**2) <= hi)
        return _hits(hits)

    return run


def tied_conditions(n: int, reps: int, rng: np.random.Generator) -> float:
    """Two conditions of one mean on 500 test samples (a 0.2-point grid), true seed std 0.1: most seeds
    score alike and many studies tie exactly; how often Welch's test on the floored stds tells them apart."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hits = []
        for _ in range(reps):
            offset = rng.uniform(0, 0.2)
            a, b = (np.round(rng.normal(99.6 + offset, 0.1, n) / 0.2) * 0.2 for _ in range(2))
            hits.append(compare(a, b, resolution=0.2).welch_p < 0.05)
    return _hits(hits)


def p_a_gt_b(n: int, reps: int, rng: np.random.Generator) -> float:
    """P(A > B)'s interval, A 0.5 seed stds better: truth Phi(0.5 / sqrt 2) = 0.638."""
    truth = float(stats.norm.cdf(0.5 / math.sqrt(2)))
    hits = []
    for _ in range(reps):
        lo, hi = compare(rng.normal(90.5, 1, n), rng.normal(90, 1, n), resolution=0.01).p_a_gt_b_ci
        hits.append(lo <= truth <= hi)
    return _hits(hits)


def welch(spread_ratio: float) -> Callable[[int, int, np.random.Generator], float]:
    """Two conditions with the same mean eval accuracy, seed stds 1 and `spread_ratio` points: how often
    Welch's test rejects at 5%."""

    def run(n: int, reps: int, rng: np.random.Generator) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _hits(
                [
                    compare(rng.normal(90, 1, n), rng.normal(90, spread_ratio, n), resolution=0.01).welch_p
                    < 0.05
                    for _ in range(reps)
                ]
            )

    return run


def welch_interval(n: int, reps: int, rng: np.random.Generator) -> float:
    """The 95% interval of a difference of means, true difference 1 point, seed stds 1 and 2."""
    hits = []
    for _ in range(reps):
        lo, hi = compare(rng.normal(91, 1, n), rng.normal(90, 2, n), resolution=0.01).diff_ci
        hits.append(lo <= 1.0 <= hi)
    return _hits(hits)


def holm_family(n: int, reps: int, rng: np.random.Generator) -> float:
    """Eight conditions with equal means (seed stds 0.5 to 3 points): how often the Holm-corrected Welch
    tests over the 28 pairs tell any pair apart (the family-wise error)."""
    sds = (0.5, 1, 1, 2, 1, 3, 1, 1)
    hits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(reps):
            table = compare_all({f"c{i}": rng.normal(90, sd, n) for i, sd in enumerate(sds)})
            hits.append(bool((table["welch_p_holm"] < 0.05).any()))
    return _hits(hits)


def at_chance_level(n: int, reps: int, rng: np.random.Generator) -> float:
    """A model exactly at chance (10 classes, 500 test samples): how often the exact binomial test calls it
    above chance. Not a function of the seeds: the same at every n."""
    return _hits([not at_chance(int(rng.binomial(500, 0.1)), 500, 0.1) for _ in range(reps)])


# -- two stages -------------------------------------------------------------------------------------------------


def stein_grid(n0: int, reps: int, rng: np.random.Generator) -> float:
    """--target-ci 0.5 with a pilot of n0 on 500 test samples (a 0.2-point grid), true seed std 0.15:
    Stein's interval over all n models, its std floored at the grid's resolution."""
    target = Target(ci=0.5, pilot=n0, max_replicates=1000)
    offset = rng.uniform(0, 0.2, reps)
    truth = _grid_truth(offset, 0.15, 0.2)
    hits = []
    for i in range(reps):
        pilot = np.round(rng.normal(offset[i], 0.15, n0) / 0.2) * 0.2
        d = decide({"c": pilot}, target, {"c": 0.2})["c"]
        rest = np.round(rng.normal(offset[i], 0.15, d.n - n0) / 0.2) * 0.2
        _, lo, hi = stein_interval(np.concatenate([pilot, rest]), d)
        hits.append(lo - 1e-9 <= truth[i] <= hi + 1e-9)
    return _hits(hits)


def target_diff_power(n0: int, reps: int, rng: np.random.Generator) -> float:
    """--target-diff 1 between two conditions of true seed std 1, pilot n0, sized at the upper bound of the
    pooled pilot std (Browne): the share of sweeps whose n reaches the 0.8 power it aims for."""
    target = Target(diff=1.0, pilot=n0, max_replicates=10_000)
    hits = []
    for _ in range(reps):
        stds = {c: float(np.std(rng.normal(0, 1, n0), ddof=1)) for c in ("a", "b")}
        n = difference_replicates(stds, 1.0, n0, target)["a"]
        hits.append(power(n, 1.0, 0.05) >= POWER - 1e-9)
    return _hits(hits)


def eight_conditions(n0: int, reps: int, rng: np.random.Generator) -> tuple[float, float]:
    """--target-diff 1 over 8 conditions of true seed std 1 (28 Holm pairs), pilot n0 each: the share of
    sweeps whose n reaches power 0.8 for every pair, and the median n over the n a known std needs."""
    known = pair_replicates(1.0, 1.0, 28)
    hits, ns = [], []
    for _ in range(reps):
        stds = {f"c{i}": float(np.std(rng.normal(0, 1, n0), ddof=1)) for i in range(8)}
        n = max(Spread.of(stds, dict.fromkeys(stds, n0)).replicates(1.0, 28).values())
        hits.append(power(n, 1.0, 0.05 / 28) >= POWER - 1e-9)
        ns.append(n)
    return _hits(hits), float(np.median(ns)) / known


def eight_conditions_power(n0: int, reps: int, rng: np.random.Generator) -> float:
    return eight_conditions(n0, reps, rng)[0]


# -- implementation twins: churn and time across twin pairs (n = pairs) -------------------------------------


CHURN_METHOD = "gamma mean (cube-root GPQ), hulled with Clopper-Pearson of the pooled counts"


def churn(mean: float, identical: float = 0.0) -> Callable[[int, int, np.random.Generator], float]:
    """Twins' churn on 500 test samples: each pair's chance of a changed prediction drawn from a gamma of
    CV 0.5 around `mean` (pairs of seeds churn unalike), a share `identical` of the pairs bit-identical."""

    def run(n: int, reps: int, rng: np.random.Generator) -> float:
        truth = (1 - identical) * mean
        hits = []
        for _ in range(reps):
            p = np.where(rng.random(n) < identical, 0.0, rng.gamma(4.0, mean / 4.0, n))
            c = twins.churn_of(rng.binomial(500, np.clip(p, 0, 1)), [500] * n)
            hits.append(c.ci[0] <= truth <= c.ci[1])
        return _hits(hits)

    return run


def time_ratio(slow: float) -> Callable[[int, int, np.random.Generator], float]:
    """b's seconds per epoch over a's, truly 1.3x: log-normal times (sd 0.1 on the log), a share `slow` of
    the runs (a or b alike) 1.5x slower, as on a busy machine."""

    def run(n: int, reps: int, rng: np.random.Generator) -> float:
        hits = []
        for _ in range(reps):
            a, b = (
                base * np.exp(rng.normal(0, 0.1, n)) * np.where(rng.random(n) < slow, 1.5, 1.0)
                for base in (10.0, 13.0)
            )
            r = twins.time_ratio(a, b)
            hits.append(r.ci[0] <= 1.3 <= r.ci[1])
        return _hits(hits)

    return run


CHECKS = [
    Check("mean accuracy, 95% CI (normal)", "t-interval over per-model means", "coverage", mean_normal),
    Check(
        "mean accuracy, 95% CI (near 100%: 2 of 1,000 wrong)",
        "t-interval hulled with the Garwood interval of the error counts",
        "coverage",
        mean_near(2.0),
        (0.93, 1.0),
    ),
    *(
        Check(
            f"mean accuracy, 95% CI (near 100%: {e:g} of 1,000 wrong)",
            "t-interval hulled with the Garwood interval of the error counts",
            "coverage",
            mean_near(e),
            (0.93, 1.0),
            seeds=(3, 5, 10),
        )
        for e in (0.2, 0.4, 0.8)
    ),
    Check(
        "mean accuracy, 95% CI (500 test samples, seed std 0.15)",
        "t-interval, std floored at resolution / sqrt(12)",
        "coverage",
        mean_on_grid(0.15),
        (0.93, 0.995),
    ),
    Check(
        "mean accuracy, 95% CI (500 test samples, seed std 0.5)",
        "t-interval, std floored at resolution / sqrt(12)",
        "coverage",
        mean_on_grid(0.5),
    ),
    Check(
        "variance components: between, 95% CI",
        "ANOVA, modified large-sample",
        "coverage",
        components("between"),
    ),
    Check("variance components: within, 95% CI", "ANOVA, chi-square", "coverage", components("within")),
    Check(
        "share of train-mode variance from dropout, 95% CI",
        "ANOVA, exact F interval of the ICC",
        "coverage",
        components("share_within"),
    ),
    Check(
        "test set's share of the seed variance, 95% CI",
        "halvings; chi-square on the seed variance (Bonett hull from 10)",
        "coverage",
        share_of_test_set,
        (0.92, 0.99),
    ),
    Check(
        "source variance / all, 95% CI",
        "F interval (Bonett hull from 10)",
        "coverage",
        source_ratio,
        (0.93, 0.98),
    ),
    Check(
        "seed variance, 95% CI (10% of seeds 4 stds worse)",
        "chi-square, hulled with Bonett's from 10 seeds (5 if non-normal)",
        "coverage",
        heavy_variance,
        (0.86, 1.0),
    ),
    Check(
        "source variance / all, 95% CI (10% of seeds 4 stds worse)",
        "F interval, hulled with Bonett's from 10 seeds (5 if non-normal)",
        "coverage",
        heavy_source_ratio,
        (0.89, 1.0),
    ),
    Check(
        "dropout share, 95% CI (pass stds vary by half between models)",
        "ANOVA, exact F interval of the ICC",
        "coverage",
        unequal_passes("share"),
        (0.84, 0.93),
        seeds=(3, 5, 10),
    ),
    Check(
        "Brown-Forsythe: passes spread unequally (equal spread)",
        "Levene's test about medians",
        "level",
        unequal_passes("test", 0.0),
        (0.01, 0.07),
        seeds=(3, 5, 10),
    ),
    Check(
        "Welch test, tied conditions (500 test samples, seed std 0.1)",
        "Welch t-test, stds floored at resolution / sqrt(12)",
        "level",
        tied_conditions,
        (0.0, 0.07),
    ),
    Check("P(A>B), 95% CI (A 0.5 seed stds better)", "noncentral t", "coverage", p_a_gt_b),
    Check(
        "difference of two conditions, 95% CI", "Welch t-interval", "coverage", welch_interval, (0.93, 0.98)
    ),
    Check("Welch test, equal seed stds", "Welch t-test", "level", welch(1.0), LEVEL),
    Check("Welch test, seed stds 3x apart", "Welch t-test", "level", welch(3.0), LEVEL),
    Check(
        "Holm over 28 pairs of 8 conditions (family-wise)",
        "Holm-corrected Welch tests",
        "level",
        holm_family,
        (0.01, 0.07),
    ),
    Check(
        "at chance level (500 samples, 10 classes)", "exact binomial test", "level", at_chance_level, LEVEL
    ),
    Check(
        "Stein's 95% interval (--target-ci 0.5, 500 test samples, std 0.15)",
        "Stein, pilot std floored at resolution / sqrt(12)",
        "coverage",
        stein_grid,
        (0.93, 0.99),
        seeds=(3, 5, 10),
    ),
    Check(
        "--target-diff: sweeps reaching power 0.8",
        "Browne's 80% upper bound of the pilot std",
        "power >= 0.8",
        target_diff_power,
        (0.72, 0.9),
        seeds=(3, 5, 10),
    ),
    Check(
        "--target-diff over 8 conditions: sweeps reaching power 0.8",
        "Browne's bound of the std pooled over 8 conditions (Bartlett)",
        "power >= 0.8",
        eight_conditions_power,
        (0.72, 1.0),
        seeds=(3, 5, 10),
    ),
    Check(
        "twins' churn, 95% CI (3% of 500 samples, pairs churn unalike; n = pairs)",
        CHURN_METHOD,
        "coverage",
        churn(0.03),
    ),
    Check(
        "twins' churn, 95% CI (0.2%: about one sample per pair)",
        CHURN_METHOD,
        "coverage",
        churn(0.002),
        (0.93, 1.0),
    ),
    Check(
        "twins' churn, 95% CI (a third of the pairs bit-identical)",
        CHURN_METHOD,
        "coverage",
        churn(0.03, 1 / 3),
        (0.87, 1.0),
    ),
    Check(
        "twins' time ratio, 95% CI (log-normal epoch times)",
        "t-interval of the log ratios",
        "coverage",
        time_ratio(0.0),
    ),
    Check(
        "twins' time ratio, 95% CI (10% of runs 1.5x slower)",
        "t-interval of the log ratios",
        "coverage",
        time_ratio(0.1),
        (0.93, 0.98),
    ),
]


def table(reps: int, seed: int = 20261203) -> list[dict[str, object]]:
    rows = []
    for i, check in enumerate(CHECKS):
        rng = np.random.default_rng([seed, i])
        rates = {n: check.run(n, reps, rng) for n in check.seeds}
        rows.append({"check": check, "rates": rates})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=4000, help="simulated studies per check and number of seeds")
    args = p.parse_args()
    start = time.perf_counter()
    print(f"| number the report prints | method | kind | {' | '.join(f'n = {n}' for n in SEEDS)} | bounds |")
    print("|---|---|---|" + "---|" * len(SEEDS) + "---|")
    for row in table(args.reps):
        check, rates = row["check"], row["rates"]
        cells = [f"{rates[n]:.3f}" if n in rates else "" for n in SEEDS]
        print(
            f"| {check.name} | {check.method} | {check.kind} | {' | '.join(cells)} | {check.bounds[0]:g}-{check.bounds[1]:g} |"
        )
    spent = {
        n: eight_conditions(n, max(args.reps // 4, 100), np.random.default_rng([20261203, n]))[1]
        for n in (3, 5, 10)
    }
    print(
        "\n--target-diff over 8 conditions, median runs per condition over what a known std needs: "
        + ", ".join(f"{r:.2f}x at a pilot of {n}" for n, r in spent.items())
    )
    print(f"\n{args.reps:,} simulated studies per cell, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
