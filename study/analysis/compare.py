"""Comparisons between models and power: is A better than B, by how much, do their spreads differ,
and how many seeds would tell a given difference apart."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.multitest import multipletests

from seedvar.analysis.spread import NAN, NAN_PAIR, as_1d_finite, bootstrap_ci, check_ci, flat_dict
from seedvar.twostage import replicates_needed  # noqa: F401  the seed rule's power analysis, defined once


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
        return flat_dict(self)


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
    ci = check_ci(ci)
    x, y = as_1d_finite(a, "a"), as_1d_finite(b, "b")
    mean_a, mean_b = float(np.mean(x)), float(np.mean(y))
    diff = mean_a - mean_b
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        lo, hi, ci_method = diff, diff, "degenerate"
    else:
        lo, hi, ci_method = bootstrap_ci(
            (x, y), _diff_of_means, diff, ci=ci, n_resamples=n_resamples, seed=seed
        )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        t_res = stats.ttest_ind(x, y, equal_var=False)
        u_res = stats.mannwhitneyu(x, y, alternative="two-sided")
        lev = stats.levene(x, y, center="median") if min(x.size, y.size) >= 2 else (NAN, NAN)
    u = float(u_res.statistic)
    return Comparison(
        n_a=int(x.size),
        n_b=int(y.size),
        mean_a=mean_a,
        mean_b=mean_b,
        std_a=float(np.std(x, ddof=1)) if x.size > 1 else NAN,
        std_b=float(np.std(y, ddof=1)) if y.size > 1 else NAN,
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
        cols = ["a", "b", *flat_dict(_EMPTY_COMPARISON).keys(), "welch_p_holm", "mannwhitney_p_holm"]
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    df["welch_p_holm"] = _holm(df["welch_p"].to_numpy(dtype=float))
    df["mannwhitney_p_holm"] = _holm(df["mannwhitney_p"].to_numpy(dtype=float))
    return df


_EMPTY_COMPARISON = Comparison(0, 0, *([NAN] * 5), NAN_PAIR, "", *([NAN] * 7))


def spread_test(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    """Brown-Forsythe (median-centred Levene) statistic and p-value: do two spreads differ?

    Median centring keeps the test honest for the skewed, bounded accuracy distributions of seed
    sweeps, where the mean-centred Levene and the F test are too liberal.
    """
    x, y = as_1d_finite(a, "a"), as_1d_finite(b, "b")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = stats.levene(x, y, center="median")
    return float(res.statistic), float(res.pvalue)


def letter_groups(means: Mapping[str, float], separated: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Compact letter display: conditions that share a letter are not told apart by the tests.

    `means` gives each condition's mean (the letters run from the best group down), `separated` the
    pairs the (Holm-corrected) tests tell apart. Insert-and-absorb (Piepho 2004): start with one group
    of all conditions; each separated pair inside a group splits it into the group without one and
    the group without the other; groups inside another group are dropped. No statistics library
    offers it, so it is written here.
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
