"""Step 3 of the report, the first screen: the answer at a glance, a headline sentence and at most four
numbers, each with its 95% interval and the table it comes from (the page links the number to it). The
long paragraphs (analysis.sentences) follow one section down and say everything this leaves out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from seedvar.analysis import conditions as compared
from seedvar.analysis.pipeline import Tables
from seedvar.analysis.render import Bullet
from seedvar.analysis.sentences import _by_mode, _ci, _count, _gaps, share_decimals
from seedvar.analysis.setup import conditions
from seedvar.analysis.tables import SPREAD_FLOOR
from seedvar.results import EVAL, TRAIN

MAX_BULLETS = 4  # numbers at a glance: more would be a table


def _pct(v: float, lo: float, hi: float) -> str:
    """A share in % with its interval, whole percents unless the interval is narrower than one."""
    d = share_decimals(lo, hi)
    return (
        f"{v:.{d}f}% (95% CI {lo:.{d}f}-{hi:.{d}f}%)"
        if np.isfinite(lo) and np.isfinite(hi)
        else f"{v:.{d}f}%"
    )


def _acc(v: float, lo: float, hi: float) -> str:
    return f"{v:.2f}% (95% CI {lo:.2f}-{hi:.2f}%)" if np.isfinite(lo) and np.isfinite(hi) else f"{v:.2f}%"


def _points(v: float, lo: float, hi: float) -> str:
    return f"{v:+.2f} points ({_ci(lo, hi)})".replace("(CI", "(95% CI")


def answer(tables: Tables) -> tuple[str, list[Bullet]]:
    """The answer at a glance: one sentence, then at most MAX_BULLETS numbers, each with its 95% interval
    and the table it comes from. One condition: its eval accuracy, dropout's share of the train-mode
    variance, train - eval and the test set's share of the seed variance. Several: the best and the lowest
    condition, the best against the runner-up, and the largest share of train-mode variance from dropout.
    The long paragraphs (`answer`) say the rest."""
    several = len(conditions(tables.ref)) > 1
    bullets = _several_bullets(tables) if several else _one_bullets(tables)
    headline = _several_headline(tables) if several else _one_headline(tables)
    return " ".join(t for t in (headline, _warning(tables)) if t), bullets[:MAX_BULLETS]


def _warning(tables: Tables) -> str:
    """Degenerate or suspect conditions, said on the first screen so no number there reads as a finding."""
    d = tables.degenerate
    if d.empty or not d["suspect"].any():
        return ""
    bad = tables.degenerate_conditions
    suspect = [c for c in dict.fromkeys(d.loc[d["suspect"], "condition"]) if c not in bad]
    out = []
    if bad:
        out.append(f"Degenerate (left out of comparisons): {compared.join_names(bad)}.")
    for cond in suspect[:3]:  # the first few by name, each at its first suspect mode (eval first)
        r = d[(d["condition"] == cond) & d["suspect"]].iloc[0]
        what = [
            f"{n} at chance" if key == "at_chance" else f"{n} predict one class"
            for key, n in (("at_chance", int(r["at_chance"])), ("one_class", int(r["one_class"])))
            if n
        ] or ["all give the same accuracy"]
        out.append(
            f"Warning: of {int(r['models'])} trained models of {cond} in {r['mode']} mode, {' and '.join(what)} "
            "(see Degenerate runs)."
        )
    if len(suspect) > 3:
        out.append(f"{len(suspect) - 3} more conditions have such models (see Degenerate runs).")
    return " ".join(out)


def _share_row(tables: Tables, cond: str, mode: str = TRAIN) -> pd.Series | None:
    v = _by_mode(tables.variance_components, cond)
    if mode not in v.index or not v.loc[mode, "within"] > 0:
        return None
    return v.loc[mode]


def _one_headline(tables: Tables) -> str:
    a = tables.accuracy
    if a.empty:
        return "No trained model was tested: nothing to report."
    cond = str(a["condition"].iloc[0])
    acc = a.set_index("mode")
    what = []
    if EVAL in acc.index:
        e = acc.loc[EVAL]
        what.append(
            f"{cond} scores {e['mean']:.2f}% in eval mode"
            + (f", {e['seed_std']:.2f} points apart from seed to seed (std)" if e["runs"] > 1 else "")
        )
    share = _share_row(tables, cond)
    if share is not None:
        lo, hi = share["share_within_ci_low"], share["share_within_ci_high"]
        who = (
            "mostly from test-time dropout"
            if lo > 50
            else "mostly from training randomness"
            if hi < 50
            else "from test-time dropout and training randomness alike (the interval holds 50%)"
        )
        what.append(f"tested in train mode it varies by {acc.loc['train', 'std']:.2f} points, {who}")
    elif TRAIN in acc.index:
        what.append(f"tested in train mode it varies by {acc.loc['train', 'std']:.2f} points (std)")
    return "; ".join(what) + "." if what else f"{cond}: no accuracy to report."


def _one_bullets(tables: Tables) -> list[Bullet]:
    a = tables.accuracy
    if a.empty:
        return []
    cond = str(a["condition"].iloc[0])
    acc = a.set_index("mode")
    out = []
    if EVAL in acc.index:
        e = acc.loc[EVAL]
        out.append(Bullet("eval accuracy over seeds", _acc(e["mean"], e["ci_low"], e["ci_high"]), "accuracy"))
    share = _share_row(tables, cond)
    if share is not None:
        out.append(
            Bullet(
                "dropout's share of train-mode variance",
                _pct(share["share_within"], share["share_within_ci_low"], share["share_within_ci_high"]),
                "variance_components",
            )
        )
    gaps = _gaps(tables.mode_gaps, cond)
    if not gaps.empty and "total" in set(gaps["part"]):
        g = gaps.set_index("part").loc["total"]
        out.append(
            Bullet("train mode minus eval mode", _points(g["mean"], g["ci_low"], g["ci_high"]), "mode_gaps")
        )
    elif TRAIN in acc.index:
        t = acc.loc[TRAIN]
        out.append(Bullet("train-mode accuracy", _acc(t["mean"], t["ci_low"], t["ci_high"]), "accuracy"))
    noise = tables.test_noise
    if not noise.empty and cond in set(noise["condition"]):
        r = noise.set_index("condition").loc[cond]
        if r["seed_var"] > SPREAD_FLOOR:
            lo, hi = (
                float(np.clip(r[k], 0, 100)) for k in ("test_set_share_ci_low", "test_set_share_ci_high")
            )
            out.append(
                Bullet(
                    "the finite test set's share of the seed variance",
                    _pct(float(np.clip(r["test_set_share"], 0, 100)), lo, hi),
                    "test_noise",
                )
            )
    return out


def _several_headline(tables: Tables) -> str:
    t = tables.conditions
    ranked = t[np.isfinite(t["eval_mean"])]
    if ranked.empty:
        return f"{_count(len(t), 'condition')}; none was tested in eval mode, so none is compared."
    seeds = sorted({int(n) for n in t["seeds"] if n > 0})
    each = f"{seeds[0]} seeds each" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]} seeds each"
    best = ranked.iloc[0]
    text = f"{_count(len(t), 'condition')}, {each}: {best['condition']} scores highest ({best['eval_mean']:.2f}% in eval mode)"
    comps = tables.comparisons
    if comps.empty:
        return text + "; the seeds compare no pair."
    return f"{text}; {told_apart(comps, 'seeds')}."


def _several_bullets(tables: Tables) -> list[Bullet]:
    t = tables.conditions
    ranked = t[np.isfinite(t["eval_mean"])]
    out = []
    if len(ranked):
        b = ranked.iloc[0]
        out.append(
            Bullet(
                f"best, {b['condition']}",
                _acc(b["eval_mean"], b["eval_ci_low"], b["eval_ci_high"]),
                "conditions",
            )
        )
    if len(ranked) > 1:
        w = ranked.iloc[-1]
        out.append(
            Bullet(
                f"lowest, {w['condition']}",
                _acc(w["eval_mean"], w["eval_ci_low"], w["eval_ci_high"]),
                "conditions",
            )
        )
    comps = tables.comparisons
    if len(ranked) > 1 and not comps.empty:
        first, second = str(ranked["condition"].iloc[0]), str(ranked["condition"].iloc[1])
        found = runner_up(comps, first, second)
        if found is not None:
            out.append(Bullet(f"{first} minus the runner-up {second}", _points(*found), "comparisons"))
    v = tables.variance_components
    train = v[(v["mode"] == TRAIN) & (v["within"] > 0)] if not v.empty else v
    if len(train):
        r = train.loc[train["share_within"].idxmax()]
        label = "dropout's share of train-mode variance" + (
            f", at most ({r['condition']})" if len(train) > 1 else f" ({r['condition']})"
        )
        out.append(
            Bullet(
                label,
                _pct(r["share_within"], r["share_within_ci_low"], r["share_within_ci_high"]),
                "variance_components",
            )
        )
    return out


def metric_answer(
    table: pd.DataFrame, comps: pd.DataFrame, metric: compared.Metric
) -> tuple[str, list[Bullet]]:
    """The glance of a metric's report (runs seedvar did not train): the best condition and what the runs
    tell apart; the best and the worst condition's mean with its 95% CI, and the best minus the runner-up
    with the CI of the difference. `table` is analysis.conditions.summary's, best first."""
    ranked = table[np.isfinite(table["mean"])]
    if ranked.empty:
        return f"No condition has a value of {metric.name}.", []

    def mean(r: pd.Series) -> str:
        if r["runs"] < 2 or not np.isfinite(r["ci_low"]):
            return f"{r['mean']:.4g} (one run)"
        return f"{r['mean']:.4g} (95% CI {r['ci_low']:.4g} to {r['ci_high']:.4g})"

    best = ranked.iloc[0]
    runs = sorted({int(n) for n in ranked["runs"]})
    each = (
        f"{runs[0]} run{'s' * (runs[0] != 1)} each"
        if len(runs) == 1
        else f"{runs[0]} to {runs[-1]} runs each"
    )
    if len(ranked) == 1:
        return f"{best['condition']}: {metric.name} {mean(best)} over {_count(int(best['runs']), 'run')}.", [
            Bullet(f"{metric.name}, {best['condition']}", mean(best), "conditions")
        ]
    headline = f"{_count(len(ranked), 'condition')}, {each}: {best['condition']} is best ({metric.name} {best['mean']:.4g})"
    if comps.empty:
        headline += "; the runs compare no pair."
    else:
        headline += f"; {told_apart(comps, 'runs')}."
    worst = ranked.iloc[-1]
    bullets = [
        Bullet(f"best, {best['condition']}", mean(best), "conditions"),
        Bullet(f"worst, {worst['condition']}", mean(worst), "conditions"),
    ]
    first, second = str(ranked["condition"].iloc[0]), str(ranked["condition"].iloc[1])
    found = runner_up(comps, first, second)
    if found is not None:
        diff, lo, hi = found
        bullets.append(
            Bullet(
                f"{first} minus the runner-up {second}",
                f"{diff:+.3g} (95% CI {lo:+.3g} to {hi:+.3g})",
                "comparisons",
            )
        )
    return headline, bullets


def runner_up(comps: pd.DataFrame, first: str, second: str) -> tuple[float, float, float] | None:
    """first - second with its 95% interval, read from the comparisons (either order), or None."""
    if comps.empty:
        return None
    pair = comps[
        ((comps["a"] == first) & (comps["b"] == second)) | ((comps["a"] == second) & (comps["b"] == first))
    ]
    if not len(pair):
        return None
    r = pair.iloc[0]
    sign = 1 if r["a"] == first else -1
    lo, hi = sorted((sign * r["diff_ci_low"], sign * r["diff_ci_high"]))
    return float(sign * r["diff"]), float(lo), float(hi)


def told_apart(comps: pd.DataFrame, who: str) -> str:
    """How many pairs the Holm-corrected Welch tests tell apart, in words (`who`: the seeds, the runs)."""
    apart, pairs = int((comps["welch_p_holm"] < compared.ALPHA).sum()), len(comps)
    if pairs == 1:
        return f"the {who} tell the two apart" if apart else f"the {who} do not tell the two apart"
    if apart == 0:
        return f"the {who} tell none of the {pairs} pairs apart"
    if apart == pairs:
        return f"the {who} tell all {pairs} pairs apart, so they rank every condition"
    return f"the {who} tell {apart} of {pairs} pairs apart (Holm-corrected Welch tests)"
