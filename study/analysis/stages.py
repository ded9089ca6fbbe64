"""Seeds decided by the data: a two-stage study's rule, checked and stated from the runs in the store.

The sweep decided each condition's n from its pilot (seedvar.twostage); the report applies the same
rule to the same pilot runs, so it states the n the sweep used, and gives Stein's fixed-width interval
(pilot std, n0 - 1 degrees of freedom) beside the usual t-interval over all n trained models.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from seedvar.analysis.load import LoadedRun
from seedvar.twostage import LEVEL, Target, decide, stein_interval

COLUMNS = [
    "condition",
    "mode",
    "n0",
    "pilot_std",
    "t",
    "rule_n",
    "n",
    "finished",
    "mean",
    "stein_low",
    "stein_high",
    "stein_half_width",
    "t_low",
    "t_high",
    "t_half_width",
    "status",
]


def accuracies(finished: list[LoadedRun], mode: str) -> dict[str, dict[int, float]]:
    """Per condition, replicate -> the mode's per-model accuracy in points as the run logged it (the value
    the sweep decided from), for the runs with every source varied."""
    out: dict[str, dict[int, float]] = {}
    for r in finished:
        summary = r.summaries.get(mode)
        if r.varied == "all" and summary is not None:
            out.setdefault(r.condition, {})[r.replicate] = 100 * summary.acc_mean
    return out


def stein_table(finished: list[LoadedRun], target: Target) -> pd.DataFrame:
    """One row per condition: its pilot, the n the rule gives, and both intervals once all n have finished."""
    by_cond = accuracies(finished, target.mode)
    pilots = {c: [v[r] for r in range(target.pilot) if r in v] for c, v in by_cond.items()}
    complete = {c: p for c, p in pilots.items() if len(p) == target.pilot}
    if target.diff > 0 and len(complete) < len(pilots):
        complete = {}  # the difference target compares every condition: no decision before all pilots
    decisions = decide(complete, target) if complete else {}
    rows = []
    for cond, values in by_cond.items():
        d = decisions.get(cond)
        row: dict[str, object] = {"condition": cond, "mode": target.mode, "n0": target.pilot}
        if d is None:
            rows.append(
                {**row, "finished": len(values), "status": f"pilot {len(pilots[cond])}/{target.pilot}"}
            )
            continue
        runs = [values[r] for r in range(d.n) if r in values]
        row.update(pilot_std=d.s, t=d.t, rule_n=d.wanted, n=d.n, finished=len(runs))
        if len(runs) < d.n:
            rows.append({**row, "status": f"short: {len(runs)} of {d.n}"})
            continue
        mean, low, high = stein_interval(runs, d)
        x = np.asarray(runs)
        sd = float(x.std(ddof=1))
        t_low, t_high = (
            stats.t.interval(LEVEL, len(x) - 1, loc=mean, scale=sd / math.sqrt(len(x)))
            if sd > 0
            else (mean, mean)
        )
        rows.append(
            {
                **row,
                "mean": mean,
                "stein_low": low,
                "stein_high": high,
                "stein_half_width": (high - low) / 2,
                "t_low": float(t_low),
                "t_high": float(t_high),
                "t_half_width": (float(t_high) - float(t_low)) / 2,
                "status": "capped" if d.capped else "reached",
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


EXPLAINED = (
    "Per condition: `n0` pilot replicates with seed std `pilot_std` (points, per-model accuracy in the target "
    "mode) and t = t(0.975, n0 - 1); `rule_n` is what the rule asks, `n` what the cap allows; once all n have "
    "finished, Stein's interval is mean +- t * pilot_std / sqrt(n) (its width fixed by the pilot), beside the "
    "usual t-interval from the std of all n runs."
)


def sentences(table: pd.DataFrame, target: Target) -> list[str]:
    """The rule and what it gave, said once for the study; each condition's numbers when they are few."""
    if table.empty:
        return []
    done = table[table["status"].isin(["reached", "capped"])]
    text = [
        f"Replicates were decided by the data in two stages: {target.rule()}. The extra replicates depend on "
        "the pilot's spread alone, never on an observed difference, so Stein's intervals are exact 95% "
        "intervals (for normal accuracies), not the product of peeking."
    ]
    if len(done) <= 3:
        for _, r in done.iterrows():
            text.append(
                f"{r['condition']}: the pilot's seed std of {r['pilot_std']:.2f} points gave n = {int(r['n'])} "
                f"({int(r['n']) - target.pilot} more{'; capped, the rule asked ' + str(int(r['rule_n'])) if r['status'] == 'capped' else ''}); "
                f"with all {int(r['n'])}, {target.mode} accuracy is {r['mean']:.2f} +- {r['stein_half_width']:.2f} "
                f"(Stein's 95% interval {r['stein_low']:.2f} to {r['stein_high']:.2f}; the usual t-interval over the "
                f"{int(r['n'])} runs {r['t_low']:.2f} to {r['t_high']:.2f})."
            )
    elif len(done):
        capped = done[done["status"] == "capped"]
        text.append(
            f"{len(done)} conditions decided: n from {int(done['n'].min())} to {int(done['n'].max())} "
            f"(median {float(done['n'].median()):g}), Stein half-widths {done['stein_half_width'].min():.2f} to "
            f"{done['stein_half_width'].max():.2f} points"
            + (
                f"; capped at {target.max_replicates}: {', '.join(capped['condition'])}"
                if len(capped)
                else ""
            )
            + "."
        )
    waiting = table[~table["status"].isin(["reached", "capped"])]
    if len(waiting):
        text.append(
            "Not complete yet: "
            + ", ".join(f"{r['condition']} ({r['status']})" for _, r in waiting.iterrows())
            + "; rerun the sweep with the same target."
        )
    return text
