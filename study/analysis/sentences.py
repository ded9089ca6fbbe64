"""Step 3 of the report: the answer in plain words, written from the tables.

One paragraph per condition (how much the accuracy varies, and how much of that is test-time dropout
versus training randomness), and one sentence per condition of a one-source-at-a-time study.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study.analysis.load import LoadedRun
from study.analysis.tables import Tables, conditions
from study.record.schema import STOCHASTIC_MODES

MODE_WORDS = {"eval": "Eval-mode", "train": "Train-mode", "mc_dropout": "MC-dropout"}


def answer(finished: list[LoadedRun], tables: Tables) -> list[str]:
    """The opening paragraphs: one per condition, then the sources ranking when there is one."""
    out = [
        condition_paragraph(cond, [r for r in finished if r.condition == cond], tables)
        for cond in conditions(finished)
    ]
    return out + source_sentences(tables.per_source)


def _by_mode(table: pd.DataFrame, cond: str) -> pd.DataFrame:
    return table[table["condition"] == cond].set_index("mode") if not table.empty else pd.DataFrame()


def train_equals_mc_dropout(group: list[LoadedRun]) -> bool:
    """Every model's train-mode passes equal its MC-dropout passes: no BatchNorm, dropout alone moves them."""
    return all(
        {"train", "mc_dropout"} <= set(r.modes)
        and np.array_equal(r.preds.passes["train"], r.preds.passes["mc_dropout"])
        for r in group
    )


def condition_paragraph(cond: str, group: list[LoadedRun], tables: Tables) -> str:
    """How much one condition's accuracy varies per mode, and where the spread comes from."""
    a, v, f = _by_mode(tables.accuracy, cond), _by_mode(tables.variance, cond), _by_mode(tables.flips, cond)
    same = train_equals_mc_dropout(group)
    parts = []
    for mode in STOCHASTIC_MODES:
        if mode not in a.index or (mode == "mc_dropout" and same):
            continue
        parts.append(_stochastic_mode(cond, mode, group, a, v, f, same))
    if "eval" in a.index:
        parts.append(_eval_mode(a.loc["eval"], f))
    return " ".join(parts)


def _stochastic_mode(
    cond: str,
    mode: str,
    group: list[LoadedRun],
    a: pd.DataFrame,
    v: pd.DataFrame,
    f: pd.DataFrame,
    same: bool,
) -> str:
    row = a.loc[mode]
    text = (
        f"{MODE_WORDS[mode]} test accuracy of {cond} varies by {row['std']:.2f} points (std over "
        f"{int(row['passes'])} passes of {int(row['runs'])} trained model{'s' if row['runs'] > 1 else ''})"
    )
    if mode in v.index:
        c = v.loc[mode]
        if c["within"] == 0:
            text += (
                f"; every {mode} pass of a model gives the same predictions (no dropout is active), "
                "so all of that spread comes from training randomness"
            )
        else:
            text += (
                f"; {c['share_within']:.0f}% (CI {c['share_within_ci_low']:.0f}-"
                f"{c['share_within_ci_high']:.0f}%) of that variance comes from test-time dropout, "
                f"{c['share_between']:.0f}% from training randomness"
            )
    text += "."
    if mode in f.index and not np.isnan(f.loc[mode, "flip_rate"]) and f.loc[mode, "flip_rate"] > 0:
        within_sd = (
            np.sqrt(v.loc[mode, "within"])
            if mode in v.index
            else np.mean([r.accuracy(mode).std(ddof=1) for r in group])
        )
        text += (
            f" Testing one trained model again moves its accuracy by {within_sd:.2f} points (std) and "
            f"changes the predicted class of {f.loc[mode, 'flip_rate']:.2f}% of test samples"
        )
        if "eval" in a.index:
            gap = row["mean"] - a.loc["eval", "mean"]
            text += f"; on average it is {abs(gap):.2f} points {'lower' if gap < 0 else 'higher'} than in eval mode"
        text += "."
    if mode == "train" and same:
        text += (
            " MC dropout gives exactly the same passes: the model has no BatchNorm, so train mode "
            "only switches dropout on."
        )
    return text


def _eval_mode(e: pd.Series, f: pd.DataFrame) -> str:
    runs = int(e["runs"])
    flip = f.loc["eval", "flip_rate"] if "eval" in f.index else float("nan")
    if flip == 0 or np.isnan(flip):
        who = f"the same {runs} models give" if runs > 1 else "the model gives"
        text = f"In eval mode {who} identical results on every pass"
    else:
        text = (
            f"In eval mode {flip:.3f}% of predictions still change between passes (nondeterministic kernels)"
        )
    if runs > 1:
        text += f"; across seeds they vary by {e['seed_std']:.2f} points (std; mean {e['mean']:.2f}%)"
    else:
        text += f" (accuracy {e['mean']:.2f}%)"
    return text + "."


def source_sentences(per_source: pd.DataFrame) -> list[str]:
    """One sentence per condition ranking the sources of training randomness by the spread each causes."""
    out = []
    if per_source.empty:
        return out
    for cond, g in per_source.groupby("condition", sort=False):
        g = g.sort_values("std", ascending=False)
        ranked = ", ".join(f"{r.source} {r.std:.2f} ({100 * r.share_of_sum:.0f}%)" for r in g.itertuples())
        out.append(
            f"Varied one at a time, the sources of training randomness move the eval accuracy of {cond} by "
            f"(std in points, share of the summed variance): {ranked}."
        )
    return out
