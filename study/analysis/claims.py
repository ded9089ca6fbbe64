"""The report's "Was it a lucky seed?" section: claimed numbers held against each condition's seeds.

Why a section of its own: a paper quotes one number, the seeds give a distribution; the stats live in
seedvar.stats.luck, this module only turns a condition's per-seed values into tables/claims.csv,
tables/expected_max.csv, figures/expected_max.png and one sentence per claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from seedvar.errors import UserError
from seedvar.stats import luck
from seedvar.stats.interval import flat_dict


def _ordinal(p: float) -> str:
    n = int(round(p))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def sentence(condition: str, c: luck.Claim, mean: float, lower_is_better: bool) -> str:
    """One plain sentence for a claim (a claim on the wrong side of the mean says so)."""
    lo, hi = c.percentile_ci
    worse = c.claim > mean if lower_is_better else c.claim < mean
    text = (
        f"{c.claim:g} lies at the {_ordinal(c.percentile)} percentile of {condition}'s seeds "
        f"(95% CI {_ordinal(lo)} to {_ordinal(hi)})"
    )
    if worse:
        return (
            text
            + f": it is {'above' if lower_is_better else 'below'} the seeds' mean {mean:.4g}, not a lucky seed."
        )
    blo, bhi = c.best_of_ci
    plo, phi = c.p_best_reaches_ci
    return (
        text + f": it is what the best of about {c.best_of:.2g} seeds gives (CI {blo:.2g} to {bhi:.2g}); "
        f"the best of its {c.n} seeds reaches it with probability {c.p_best_reaches:.2f} "
        f"(CI {plo:.2f} to {phi:.2f})."
    )


@dataclass(frozen=True)
class Held:
    """Every claim held against its condition's seeds: one row per claim, the expected best of k = 1..n per
    claimed condition, and a sentence per claim."""

    claims: pd.DataFrame
    expected_max: pd.DataFrame
    text: list[str]


def hold_claims(
    values: Mapping[str, np.ndarray], claims: Sequence[tuple[str, float]], lower_is_better: bool = False
) -> Held:
    """Each claim (condition, claimed value) held against the condition's values, one per trained model."""
    claims = dict(claims)
    unknown = [k for k in claims if k not in values]
    if unknown:
        raise UserError(f"--claim {unknown[0]}: no such condition (conditions: {', '.join(sorted(values))})")
    higher = not lower_is_better
    rows, em, text = [], [], []
    for cond, value in claims.items():
        x = np.asarray(values[cond], dtype=float)
        x = x[np.isfinite(x)]
        if x.size < 2:
            raise UserError(
                f"--claim {cond}: the condition has {x.size} seed value(s); a claim needs 2 or more"
            )
        c = luck.hold(x, float(value), higher=higher)
        # each (low, high) interval as its _low / _high columns, as every table of intervals
        rows.append(
            {"condition": cond, **{k: v for k, v in flat_dict(c).items() if not isinstance(v, tuple)}}
        )
        text.append(sentence(cond, c, float(x.mean()), lower_is_better))
        if not any(r["condition"] == cond for r in em):
            for k in range(1, x.size + 1):
                lo, hi = luck.expected_max_interval(x, k, higher=higher)
                em.append(
                    {
                        "condition": cond,
                        "k": k,
                        "expected_max": luck.expected_max_ustat(x, k, higher=higher),
                        "ci_low": lo,
                        "ci_high": hi,
                    }
                )
    text.append(
        "Percentile, best-of k and the probability assume normal seeds (exact noncentral-t intervals); "
        "the expected best of k is the unbiased order-statistic (U-statistic) estimate, with the "
        "normal-model interval; the share of seeds at or above a claim has a Clopper-Pearson interval."
    )
    return Held(pd.DataFrame(rows), pd.DataFrame(em), text)


def figure(table: pd.DataFrame, claims: Sequence[tuple[str, float]], lower_is_better: bool) -> Figure:
    """Expected best of k seeds with its interval per claimed condition, the claim as a dashed line."""
    claims = dict(claims)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    for cond, g in table.groupby("condition", sort=False):
        line = ax.plot(g["k"], g["expected_max"], marker="o", label=str(cond))[0]
        ax.fill_between(g["k"], g["ci_low"], g["ci_high"], alpha=0.2, color=line.get_color())
        ax.axhline(float(claims[cond]), ls="--", color=line.get_color(), lw=1)
    ax.set_xlabel("k seeds")
    ax.set_ylabel("expected " + ("best (min)" if lower_is_better else "best (max)") + " of k")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
