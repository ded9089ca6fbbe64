"""Seeds decided by the data: a two-stage study's rule, checked and stated from the runs in the store.

The sweep decided each condition's n from its pilot (seedvar.stats.twostage); the report applies the same
rule to the same pilot runs, so it states the n the sweep used, and gives Stein's fixed-width interval
(pilot std, n0 - 1 degrees of freedom) beside the usual t-interval over all n trained models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seedvar.analysis.load import LoadedRun
from seedvar.record.reader import reference_runs
from seedvar.results import points
from seedvar.stats.interval import mean_interval
from seedvar.stats.power import POWER, pooled_std
from seedvar.stats.twostage import Target, achieved_power, decidable, decide, stein_interval

COLUMNS = [
    "condition",
    "mode",
    "n0",
    "pilot_std",
    "floor",
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
    "final_std",
    "power_at_final_std",
    "status",
]


def accuracies(finished: list[LoadedRun], mode: str) -> dict[str, dict[int, float]]:
    """Per condition, replicate -> the mode's per-model accuracy in points as the run logged it (the value
    the sweep decided from), for the reference runs."""
    out: dict[str, dict[int, float]] = {}
    for r in reference_runs(finished):
        summary = r.summaries.get(mode)
        if summary is not None:
            out.setdefault(r.label, {})[r.replicate] = points(summary.acc_mean)
    return out


def stein_table(finished: list[LoadedRun], target: Target) -> pd.DataFrame:
    """One row per condition: its pilot, the n the rule gives, both intervals once all n have finished,
    and for a difference target the power its n gives at the final seed std (the lowest over its pairs)."""
    by_cond = accuracies(finished, target.mode)
    grid = {c: max((r.resolution for r in finished if r.label == c), default=0.0) for c in by_cond}
    pilots = {c: [v[r] for r in range(target.pilot) if r in v] for c, v in by_cond.items()}
    complete, waiting = decidable(pilots, target)
    decisions = decide(complete, target, grid) if complete else {}
    finals = {
        c: [v[r] for r in range(d.n) if r in v]
        for c, v in by_cond.items()
        if (d := decisions.get(c)) is not None
    }
    rows = []
    for cond, values in by_cond.items():
        d = decisions.get(cond)
        row: dict[str, object] = {"condition": cond, "mode": target.mode, "n0": target.pilot}
        if d is None:
            rows.append({**row, "finished": len(values), "status": waiting.get(cond, "")})
            continue
        runs = finals[cond]
        row.update(pilot_std=d.s, floor=d.floor, t=d.t, rule_n=d.wanted, n=d.n, finished=len(runs))
        if len(runs) < d.n:
            rows.append({**row, "status": f"short: {len(runs)} of {d.n}"})
            continue
        mean, low, high = stein_interval(runs, d)
        usual = mean_interval(runs, resolution=grid[cond])
        row.update(
            mean=mean,
            stein_low=low,
            stein_high=high,
            stein_half_width=(high - low) / 2,
            t_low=usual.ci_low,
            t_high=usual.ci_high,
            t_half_width=usual.half_width,
            final_std=usual.std,
            status="capped" if d.capped else "reached",
        )
        if target.diff > 0 and len(finals) > 1:
            pairs = len(finals) * (len(finals) - 1) // 2
            row["power_at_final_std"] = min(
                achieved_power(
                    min(d.n, decisions[o].n),
                    pooled_std(usual.std, float(np.std(finals[o], ddof=1)) if len(finals[o]) > 1 else 0.0),
                    target.diff,
                    pairs,
                )
                for o in finals
                if o != cond
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


EXPLAINED = (
    "Per condition: `n0` pilot replicates with seed std `pilot_std` (points, per-model accuracy in the target "
    "mode), at least `floor` = the test set's resolution / sqrt(12), and t = t(0.975, n0 - 1); `rule_n` is what "
    "the rule asks, `n` what the cap allows; once all n have finished, Stein's interval is mean +- t * "
    "max(pilot_std, floor) / sqrt(n) (its width fixed by the pilot), beside the usual t-interval from the std "
    "of all n runs. With a difference target, `power_at_final_std` is the power n gives to tell apart the "
    "target difference at the final seed stds (the lowest over the condition's pairs)."
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
            floored = (
                f" (floored at the test set's resolution, {r['floor']:.2f})"
                if r["floor"] > r["pilot_std"]
                else ""
            )
            text.append(
                f"{r['condition']}: the pilot's seed std of {r['pilot_std']:.2f} points{floored} gave n = {int(r['n'])} "
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
    powers = done["power_at_final_std"].dropna() if "power_at_final_std" in done else pd.Series(dtype=float)
    if target.diff > 0 and len(powers):
        low, high = float(powers.min()), float(powers.max())
        span = f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f} to {high:.2f}"
        text.append(
            f"At the final seed stds, these n give power {span} to tell apart two conditions {target.diff:g} "
            f"points apart (two-sided at 5% / pairs; the target was {POWER:g})."
        )
    waiting = table[~table["status"].isin(["reached", "capped"])]
    if len(waiting):
        text.append(
            "Not complete yet: "
            + ", ".join(f"{r['condition']} ({r['status']})" for _, r in waiting.iterrows())
            + "; rerun the sweep with the same target."
        )
    return text
