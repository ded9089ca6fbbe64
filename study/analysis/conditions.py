"""Conditions compared on one number per replicate, for any metric: the table of conditions (mean, std,
95% t-interval, group letters), the Holm-corrected Welch comparisons, the seeds a difference needs, and
the sentences that say what the seeds can and cannot tell apart.

The same functions serve seedvar's own studies (eval accuracy per trained model, in points) and runs
seedvar did not train (any logged metric, in its own units, higher or lower is better).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seedvar.stats.compare import ALPHA, compare_all, letter_groups, separated_pairs
from seedvar.stats.interval import mean_interval, resolution_floor
from seedvar.stats.power import POWER, REACHED, Spread, pair_replicates
from seedvar.stats.twostage import stein_replicates

MAX_LISTED = 10  # separated pairs named one by one; beyond, the letters say it
SUMMARY_COLUMNS = ["condition", "runs", "mean", "std", "ci_low", "ci_high", "group"]


@dataclass(frozen=True)
class Metric:
    """What is compared: its name in sentences, how its values read, and which way is better."""

    name: str = "eval accuracy"
    unit: str = "%"  # after a value: 96.08%
    diff_unit: str = " points"  # after a difference: +1.20 points
    lower_is_better: bool = False
    bounds: tuple[float, float] | None = (0.0, 100.0)  # the values' possible range (intervals are clipped)
    power_diffs: tuple[float, ...] = (1.0, 0.5)  # the differences the power table always sizes seeds for
    power_unit: str = "_point"  # after a difference in the power table's column names
    label: str = "Eval accuracy"  # how a figure's title names it
    axis: str = "points"  # a figure's unit of its differences

    def value(self, v: float) -> str:
        return f"{v:.2f}{self.unit}" if self.unit == "%" else f"{v:.4g}{self.unit}"

    def diff(self, v: float, sign: bool = False) -> str:
        text = f"{v:+.2f}" if sign else f"{v:.2f}"
        if self.unit != "%":
            text = f"{v:+.3g}" if sign else f"{v:.3g}"
        return text + self.diff_unit

    def better(self, a: float, b: float) -> bool:
        """a is better than b."""
        return a < b if self.lower_is_better else a > b


ACCURACY = Metric()


def summary(
    samples: Mapping[str, np.ndarray],
    comparisons: pd.DataFrame,
    metric: Metric = ACCURACY,
    *,
    resolution: Mapping[str, float] | None = None,
    excluded: Sequence[str] = (),
    twins: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per condition, best first: replicates, mean, std, the 95% t-interval of the mean and the
    group letter (conditions sharing a letter are not told apart; `excluded` ones, such as degenerate
    conditions, are not compared and get their reason's word instead, as do `twins`, the same seeds under
    another implementation (seedvar.analysis.twins); a condition with one replicate is never tested, so it
    gets "–" and no letter)."""
    res = resolution or {}
    rows = []
    for cond, values in samples.items():
        m = mean_interval(values, resolution=res.get(cond, 0.0), bounds=metric.bounds)
        rows.append(
            {
                "condition": cond,
                "runs": m.n,
                "mean": m.mean,
                "std": m.std,
                "ci_low": m.ci_low,
                "ci_high": m.ci_high,
            }
        )
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-1])
    compared = {
        c: v
        for c, v, n in zip(table["condition"], table["mean"], table["runs"], strict=True)
        if c not in excluded and c not in twins and n >= 2
    }
    sign = -1.0 if metric.lower_is_better else 1.0
    letters = letter_groups({c: sign * v for c, v in compared.items()}, separated_pairs(comparisons))
    table["group"] = [
        "degenerate" if c in excluded else "twin" if c in twins else letters.get(c, "–") or "–"
        for c in table["condition"]
    ]
    order = table["mean"] * (1 if metric.lower_is_better else -1)
    return table.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)


def comparisons(
    samples: Mapping[str, np.ndarray], resolution: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Welch's test of every pair of conditions with 2+ replicates each, Holm-corrected over the pairs."""
    kept = {c: v for c, v in samples.items() if len(v) >= 2}
    return compare_all(kept, resolution=resolution) if len(kept) >= 2 else pd.DataFrame()


def spread_of(samples: Mapping[str, np.ndarray], resolution: Mapping[str, float] | None = None) -> Spread:
    """The seed stds every seed count of a report is sized at (seedvar.stats.power.Spread): each compared
    condition's std floored at its resolution, pooled where Bartlett's test finds them compatible."""
    res = resolution or {}
    kept = {c: np.asarray(v, float) for c, v in samples.items() if len(v) >= 2}
    stds = {
        c: max(float(np.std(v, ddof=1)) if np.ptp(v) > 0 else 0.0, resolution_floor(res.get(c, 0.0)))
        for c, v in kept.items()
    }
    return Spread.of(stds, {c: len(v) for c, v in kept.items()})


def power_column(diff: float, unit: str = "") -> str:
    """`replicates_for_1_point`: the power table's column for one difference."""
    return f"replicates_for_{diff:.3g}{unit}"


def power_diffs(
    comparisons: pd.DataFrame, metric: Metric = ACCURACY, diff: float | None = None
) -> list[float]:
    """The differences the power table sizes for: the metric's own (1 and 0.5 accuracy points), then `diff`
    (--target-diff) or else the closest pair's difference (rounded as its column is named); none but the
    metric's own without a comparison."""
    if comparisons.empty:
        return list(metric.power_diffs)
    closest = float(f"{float(comparisons['diff'].abs().min()):.3g}")
    extra = diff if diff else closest
    return [*metric.power_diffs, *([extra] if extra > 0 else [])]


def power_table(spread: Spread, diffs: Sequence[float], unit: str = "") -> pd.DataFrame:
    """One row per compared condition: replicates needed to detect each difference in `diffs` against a
    condition of the same spread (POWER, two-sided at ALPHA), sized at `spread` (an upper bound of the
    seed std, pooled where the stds are compatible); empty with no difference to size for."""
    if not diffs:
        return pd.DataFrame()
    rows = []
    for cond, sd in spread.stds.items():
        row: dict[str, object] = {"condition": cond, "seeds": spread.ns[cond], "seed_std": sd}
        row["sized_at_std"] = sized = spread.condition(cond)
        for d in dict.fromkeys(diffs):
            row[power_column(d, unit)] = pair_replicates(sized, d, 1) if d > 0 else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["sized_at"] = spread.how()
    return table


def matrices(table: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Difference of means (row minus column) and Holm-adjusted Welch p-values, as square tables."""
    diff = pd.DataFrame(0.0, index=names, columns=names)
    pv = pd.DataFrame(np.nan, index=names, columns=names)
    for _, row in table.iterrows():
        diff.loc[row["a"], row["b"]], diff.loc[row["b"], row["a"]] = row["diff"], -row["diff"]
        pv.loc[row["a"], row["b"]] = pv.loc[row["b"], row["a"]] = row["welch_p_holm"]
    return diff, pv


def join_names(items: list[str]) -> str:
    """a; a and b; a, b and c."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def verdict(
    table: pd.DataFrame,
    comps: pd.DataFrame,
    metric: Metric = ACCURACY,
    excluded: Sequence[str] = (),
    *,
    spread: Spread,
) -> list[str]:
    """What the seeds tell apart: the ranking where the Holm-corrected Welch tests separate every pair, the
    groups they cannot separate, and the seeds the closest pair they do not separate would need (sized at
    `spread`). `table` is `summary`'s (best first); conditions on one seed are never named in a ranking."""
    compared = table[~table["condition"].isin(excluded) & np.isfinite(table["mean"]) & (table["runs"] >= 2)]
    if len(compared) < 2 or comps.empty:
        return [
            f"Comparisons need at least two conditions{' that are not degenerate' if excluded else ''}, with 2+ seeds each."
        ]
    pairs = len(comps)
    apart = separated_pairs(comps)
    tests = f"Holm-corrected Welch tests of {metric.name} over the {pairs} pair{'s' * (pairs != 1)} (family-wise {ALPHA:g})"
    out = []
    if not apart:
        out.append(
            f"The seeds cannot tell any of the {len(compared)} compared conditions apart: none of the {tests} separates them."
        )
    elif len(apart) == pairs:
        order = " > ".join(f"{r.condition} ({metric.value(r.mean)})" for r in compared.itertuples())
        out.append(f"The {tests} tell every pair apart, so the seeds rank them: {order}.")
    else:
        order = ", ".join(f"{r.condition} {metric.value(r.mean)} ({r.group})" for r in compared.itertuples())
        groups: dict[str, list[str]] = {}
        for r in compared.itertuples():
            for letter in r.group:
                groups.setdefault(letter, []).append(r.condition)
        together = "; ".join(f"{k}: {join_names(v)}" for k, v in groups.items() if len(v) > 1)
        mean = dict(zip(compared["condition"], compared["mean"], strict=True))
        told = [(a, b) if metric.better(mean[a], mean[b]) else (b, a) for a, b in apart]
        word = "below" if metric.lower_is_better else "above"
        which = (
            f" Told apart: {join_names([f'{hi} {word} {lo} ({metric.diff(mean[hi] - mean[lo], sign=True)})' for hi, lo in told])}."
            if len(told) <= MAX_LISTED
            else ""
        )
        out.append(
            f"The {tests} tell {len(apart)} of {pairs} pairs apart.{which} From best to worst, conditions that "
            f"share a letter cannot be told apart: {order}."
            + (f" Groups the seeds cannot separate: {together}." if together else "")
        )
    out.append(closest_pair_sentence(comps, apart, metric, spread))
    return [t for t in out if t]


def closest_pairs(
    comps: pd.DataFrame, apart: list[tuple[str, str]], resolution: float = 1e-9
) -> pd.DataFrame:
    """The pairs the tests do not separate whose means lie closest, all of them when several tie (their
    differences equal to within `resolution`, the finest step the values can tell)."""
    separated = {frozenset(p) for p in apart}
    left = comps[[frozenset((a, b)) not in separated for a, b in zip(comps["a"], comps["b"], strict=True)]]
    if left.empty:
        return left
    gap = left["diff"].abs()
    return left[gap <= gap.min() + resolution]


def closest_pair_sentence(
    comps: pd.DataFrame, apart: list[tuple[str, str]], metric: Metric, spread: Spread
) -> str:
    """How many seeds per condition would separate the closest conditions the tests do not separate,
    sized at an upper bound of the seed std (`spread`: pooled where compatible, else each pair's);
    pairs that are equally close (to the values' printed precision) are named together, with the most
    seeds any of them needs."""
    rows = closest_pairs(comps, apart, resolution=5e-3 if metric.unit == "%" else 1e-12)
    if rows.empty:
        return ""
    pairs = len(comps)
    several = len(rows) > 1
    names = "; ".join(f"{r.a} and {r.b}" for r in rows.itertuples())
    diff = float(rows["diff"].abs().max())
    if diff == 0:
        return (
            f"The closest pair{'s' * several}, {names}, {'have' if not several else 'each have'} the same mean "
            f"{metric.name}: no number of seeds tells them apart."
        )
    sds = [spread.pair(r.a, r.b) for r in rows.itertuples()]
    needs = [
        pair_replicates(sd, abs(float(r.diff)), pairs) for sd, r in zip(sds, rows.itertuples(), strict=True)
    ]
    k = int(np.argmax(needs))
    what = "pairs the seeds do not separate" if several else "pair the seeds do not separate"
    named = f" ({names})" if several else f", {names},"
    return (
        f"The closest {what}{named} lie {metric.diff(abs(float(rows['diff'].iloc[k])))} apart: about "
        f"{needs[k]:,} seeds per condition would tell {'each of them' if several else 'them'} apart "
        f"({POWER:.0%} power, two-sided test at {ALPHA:g} / {pairs}, the strictest step of the Holm "
        f"correction), sized at a seed std of {max(sds):.3g}: {spread.how()}. Sized this way, the seeds "
        f"recommended reach {POWER:.0%} power in {REACHED} of simulated studies (sized at the observed std, "
        "in about half)."
    )


def stein_sentence(table: pd.DataFrame, metric: Metric = ACCURACY, half_width: float | None = None) -> str:
    """Seeds per condition for a 95% interval of a given half-width (Stein's rule, the seeds so far as the
    pilot); without a half-width, for half of each condition's present half-width."""
    rows = table[(table["runs"] >= 2) & np.isfinite(table["ci_high"])]
    if rows.empty:
        return ""
    parts = []
    for r in rows.itertuples():
        h = half_width if half_width else (r.ci_high - r.ci_low) / 4
        if not h > 0 or not math.isfinite(r.std):
            continue
        parts.append(f"{r.condition} {stein_replicates(float(r.std), int(r.runs), h):,}")
    if not parts:
        return ""
    goal = (
        f"a 95% interval of half-width {metric.diff(half_width)}"
        if half_width
        else "half of each interval's present width"
    )
    return (
        f"Seeds per condition for {goal} (Stein's rule, the seeds so far as the pilot): "
        + ", ".join(parts)
        + "."
    )
