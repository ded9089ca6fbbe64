"""Comparisons between conditions: is A better than B, by how much, and which conditions the seeds
cannot tell apart (Holm-corrected Welch tests and their compact letter display).

One value per trained model on each side. Welch's t-test (no equal-variance assumption) with its own
interval of the difference; the std of each side is floored at the test set's resolution as every
interval here is (seedvar.stats.interval), so two conditions whose seeds all scored alike still get a
test. Its level, checked by simulation: 0.03 at 3 seeds a side with equal spreads, 0.04 at 5, 0.05 from
10 (and at most 0.06 with spreads 3x apart). P(A > B), the chance that a trained model of A scores above
one of B, is an effect size, not a test: counted from 3 against 3 seeds it reads 0 or 1 in a tenth of
studies of identical conditions, so it is given under the normal model, Phi(d / sqrt(2)) with d the
standardized difference, with the exact interval from inverting the noncentral t of the pooled
two-sample statistic (its point the median-unbiased value; simulated coverage in the README). Rank tests and
spread tests are not given: Mann-Whitney cannot reject at 3 against 3 (its smallest two-sided p is 0.1)
and Brown-Forsythe rejected 0-0.7% at a nominal 5% below 10 seeds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from seedvar.stats.interval import ALPHA, LEVEL, NAN, as_1d_finite, check_level, flat_dict, resolution_floor
from seedvar.stats.power import nct_cdf


@dataclass(frozen=True)
class Comparison:
    """Two independent samples of one value per trained model, conditions A and B."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    diff: float
    diff_ci: tuple[float, float]
    welch_t: float
    welch_df: float
    welch_p: float
    p_a_gt_b: float
    p_a_gt_b_ci: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return flat_dict(self)


def compare(a: ArrayLike, b: ArrayLike, *, level: float = LEVEL, resolution: float = 0.0) -> Comparison:
    """Welch's t-test of mean(A) - mean(B) with its t-interval, and P(A > B) + P(A = B)/2 = U / (n_a n_b).

    Each side's std is floored at resolution / sqrt(12); with fewer than 2 values on a side, or no spread
    on either side and no grid to floor it at, the test is undefined (nan).
    """
    level = check_level(level)
    x, y = as_1d_finite(a, "a"), as_1d_finite(b, "b")
    mean_a, mean_b = float(np.mean(x)), float(np.mean(y))
    diff = mean_a - mean_b
    sd_a, sd_b = _std(x), _std(y)
    floor = resolution_floor(resolution)
    t_stat = df = p = NAN
    ci = (NAN, NAN)
    if x.size > 1 and y.size > 1:
        va, vb = max(sd_a, floor) ** 2 / x.size, max(sd_b, floor) ** 2 / y.size
        se = math.sqrt(va + vb)
        if se > 0:
            df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
            t_stat = diff / se
            p = float(2 * stats.t.sf(abs(t_stat), df))
            half = float(stats.t.ppf(0.5 + level / 2, df)) * se
            ci = (diff - half, diff + half)
    p_sup, p_sup_ci = superiority(x, y, floor, level)
    return Comparison(
        n_a=int(x.size),
        n_b=int(y.size),
        mean_a=mean_a,
        mean_b=mean_b,
        std_a=sd_a,
        std_b=sd_b,
        diff=diff,
        diff_ci=ci,
        welch_t=float(t_stat),
        welch_df=float(df),
        welch_p=float(p),
        p_a_gt_b=p_sup,
        p_a_gt_b_ci=p_sup_ci,
    )


def _std(x: np.ndarray) -> float:
    """The sample std; exactly 0 for identical values (not float noise of their mean), nan below 2."""
    if x.size < 2:
        return NAN
    return 0.0 if np.ptp(x) == 0 else float(np.std(x, ddof=1))


def superiority(
    x: np.ndarray, y: np.ndarray, floor: float = 0.0, level: float = LEVEL
) -> tuple[float, tuple[float, float]]:
    """P(A > B) = Phi(d / sqrt(2)) for normal seeds of equal spread, d = (mu_a - mu_b) / sigma, and its
    interval: the pooled t = (mean_a - mean_b) / (s sqrt(1/n_a + 1/n_b)) is noncentral t with
    n_a + n_b - 2 degrees of freedom and noncentrality d / sqrt(1/n_a + 1/n_b); the noncentralities that
    put t at the interval's tails (and at the median, for the point) map to P(A > B). s is floored at the
    resolution. (nan, (nan, nan)) with fewer than 2 values a side or no spread and no floor."""
    na, nb = x.size, y.size
    if na < 2 or nb < 2:
        return NAN, (NAN, NAN)
    df = na + nb - 2
    sp = math.sqrt(((na - 1) * _std(x) ** 2 + (nb - 1) * _std(y) ** 2) / df)
    sp = max(sp, floor)
    if not sp > 0:
        return NAN, (NAN, NAN)
    scale = math.sqrt(1 / na + 1 / nb)
    t = (float(np.mean(x)) - float(np.mean(y))) / (sp * scale)

    def cdf(nc: float) -> float:
        value = float(special.nctdtr(df, nc, t))  # the ufunc: 100x faster than stats.nct's frozen calls
        return value if math.isfinite(value) else nct_cdf(t, df, nc)

    def nc_at(prob: float) -> float:
        """The noncentrality whose cdf at t is `prob` (the cdf falls as the noncentrality grows)."""
        width = 10.0 + abs(t)
        lo, hi = t - width, t + width
        while cdf(lo) < prob:
            lo -= width
        while cdf(hi) > prob:
            hi += width
        return float(optimize.brentq(lambda nc: cdf(nc) - prob, lo, hi, xtol=1e-6))

    def prob(nc: float) -> float:
        return float(stats.norm.cdf(nc * scale / math.sqrt(2)))

    tail = (1 - level) / 2
    return prob(nc_at(0.5)), (prob(nc_at(1 - tail)), prob(nc_at(tail)))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values over the finite entries; nan stays nan. statsmodels' `multipletests` gives the
    same numbers (the tests compare them) but runs a full garbage collection on every call (38 ms here,
    more beside a report's loaded runs), so the step-down is written out: sorted ascending, the i-th of m
    is multiplied by m - i, made monotone, capped at 1."""
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    order = np.argsort(q, kind="stable")
    adjusted = np.minimum(np.maximum.accumulate(q[order] * np.arange(q.size, 0, -1)), 1.0)
    finite = np.empty_like(q)
    finite[order] = adjusted
    out[ok] = finite
    return out


COLUMNS = [
    "a",
    "b",
    *flat_dict(Comparison(0, 0, *([NAN] * 5), (NAN, NAN), NAN, NAN, NAN, NAN, (NAN, NAN))),
    "welch_p_holm",
]


def compare_all(
    samples: Mapping[str, ArrayLike], *, level: float = LEVEL, resolution: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """`compare` for every pair (in the mapping's order), with Holm-adjusted Welch p-values: Holm keeps
    the family-wise error over all pairs without assuming independent tests, which pairs sharing a
    condition are not. A pair's resolution is the coarser of its two conditions'."""
    res = resolution or {}
    rows = [
        {
            "a": a,
            "b": b,
            **compare(
                samples[a], samples[b], level=level, resolution=max(res.get(a, 0.0), res.get(b, 0.0))
            ).as_dict(),
        }
        for a, b in itertools.combinations(samples, 2)
    ]
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.DataFrame(rows)
    df["welch_p_holm"] = holm(df["welch_p"].to_numpy(dtype=float))
    return df


def separated_pairs(comparisons: pd.DataFrame, alpha: float = ALPHA) -> list[tuple[str, str]]:
    """The pairs of conditions the Holm-corrected Welch tests tell apart."""
    if comparisons.empty:
        return []
    apart = comparisons[comparisons["welch_p_holm"] < alpha]
    return list(zip(apart["a"], apart["b"], strict=True))


def letter_groups(means: Mapping[str, float], separated: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Compact letter display: conditions that share a letter are not told apart by the tests.

    `means` gives each condition's mean (the letters run from the best group down; pass negated means
    where lower is better), `separated` the pairs the (Holm-corrected) tests tell apart.
    Insert-and-absorb (Piepho 2004): start with one group of all conditions; each separated pair inside
    a group splits it into the group without one and the group without the other; groups inside another
    group are dropped. No statistics library offers it, so it is written here.
    """
    names = list(means)
    groups: list[frozenset[str]] = [frozenset(names)]
    for a, b in separated:
        if a not in means or b not in means:
            continue
        split: list[frozenset[str]] = []
        for g in groups:
            split += [g - {a}, g - {b}] if a in g and b in g else [g]
        unique = list(dict.fromkeys(split))
        groups = [g for g in unique if not any(g < h for h in unique)]
    groups = [g for g in groups if g]
    groups.sort(key=lambda g: (-max(means[n] for n in g), sorted(g)))
    letters = {n: "" for n in names}
    for i, g in enumerate(groups):
        for n in g:
            letters[n] += _letter(i)
    return letters


def _letter(i: int) -> str:
    """a, b, ..., z, then A, B, ..., then a1, b1, ... (beyond 52 groups)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return alphabet[i % 52] + (str(i // 52) if i >= 52 else "")
