"""Step 3 of the report: the answer in plain words, written from the tables.

A study of one condition gets one paragraph: whether it is degenerate, how much the accuracy varies, how
much of that is test-time dropout versus training randomness, how train mode splits into BatchNorm and
dropout, and how much of the seed-to-seed spread is the finite test set. A study of several conditions
(models, determinism, dataset variants) opens with the table of conditions and says what its seeds can
and cannot tell apart; what holds for every condition is said once, and each condition's paragraph
follows in a section of its own. Then the leakage of the splits, and for a one-source-at-a-time study
each source against the `all` reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seedvar.analysis import conditions as compared
from seedvar.analysis import twins
from seedvar.analysis.conditions import join_names
from seedvar.analysis.load import LoadedRun
from seedvar.analysis.pipeline import Tables
from seedvar.analysis.setup import conditions
from seedvar.analysis.tables import SPREAD_FLOOR
from seedvar.results import EVAL, MC_DROPOUT, REFERENCE, STOCHASTIC_MODES, TRAIN
from seedvar.stats import sources
from seedvar.stats.interval import ALPHA, NON_NORMAL_P

MODE_WORDS = {EVAL: "Eval-mode", TRAIN: "Train-mode", MC_DROPOUT: "MC-dropout"}


def answer(tables: Tables) -> list[str]:
    """The opening paragraphs: a single condition's paragraph, or for several conditions what the seeds
    tell apart and what they share; then leakage and the sources against `all`."""
    ref = tables.ref
    first = twins.twin_sentences(tables.twins)  # per implementation setting, first: are the twins identical?
    if len(conditions(ref)) > 1:
        text = comparison_sentences(tables) + common_sentences(ref, tables)
    else:
        text = condition_paragraphs(tables)
    return first + text + split_sentences(tables.splits) + source_sentences(tables.per_source)


def condition_paragraphs(tables: Tables) -> list[str]:
    """One paragraph per condition: degenerate or not, spread per mode and where it comes from, test noise."""
    ref = tables.ref
    out = []
    for cond in conditions(ref):
        parts = [
            degenerate_sentence(cond, tables),
            condition_paragraph(cond, [r for r in ref if r.label == cond], tables),
            test_noise_sentence(cond, tables),
        ]
        out.append(" ".join(p for p in parts if p))
    return out


def _where(some: list[str], names: list[str]) -> str:
    """The words for where a statement holds: every condition, or the few named."""
    return "every condition" if len(some) == len(names) else join_names(some)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def comparison_sentences(tables: Tables) -> list[str]:
    """What the seeds can and cannot tell apart: the spread of eval accuracy over the conditions, what the
    table holds, the degenerate conditions, then the verdict of the Holm-corrected comparisons
    (analysis.conditions.verdict: ranking or groups, and the seeds the closest pair would need)."""
    t = tables.conditions
    seeds = sorted({int(n) for n in t["seeds"] if n > 0})
    ranked = t[np.isfinite(t["eval_mean"])]
    if ranked.empty:
        return [f"{_count(len(t), 'condition')}; none was tested in eval mode, so none is compared."]
    each = f"{seeds[0]} seeds each" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]} seeds each"
    best, worst = ranked["eval_mean"].max(), ranked["eval_mean"].min()
    spread = (
        f"eval accuracy is {best:.2f}% in every condition"
        if f"{best:.2f}" == f"{worst:.2f}"
        else f"eval accuracy runs from {best:.2f}% ({ranked['condition'].iloc[0]}) down to {worst:.2f}% "
        f"({ranked['condition'].iloc[-1]})"
    )
    out = [
        f"{_count(len(t), 'condition')}, {each}: {spread}; "
        "the table gives each condition's mean with its 95% CI over seeds, the seed std, train - eval with "
        "its BatchNorm and dropout parts, the share of train-mode variance from test-time dropout, the "
        "train-mode flip rate and the finite test set's share of the seed variance (100% where the test set "
        "alone can give all of it), each share with its 95% CI."
    ]
    out += [text for text in (degenerate_sentence(c, tables) for c in t["condition"]) if text]
    others = [c for c in t["condition"] if c not in tables.twin_conditions]
    if tables.twin_conditions and len(others) < 2:  # nothing but twins of one condition: nothing to rank
        return out
    return out + compared.verdict(
        tables.ranked,
        tables.comparisons,
        excluded=[*tables.degenerate_conditions, *tables.twin_conditions],
        spread=tables.spread,
    )


def common_sentences(ref: list[LoadedRun], tables: Tables) -> list[str]:
    """What holds for every condition (or a named few), said once instead of in every paragraph."""
    names = conditions(ref)
    by_cond = {c: [r for r in ref if r.label == c] for c in names}
    out = []
    f = tables.flip_rates
    ev = f[f["mode"] == EVAL].set_index("condition")["flip_rate"] if not f.empty else pd.Series(dtype=float)
    moving = [c for c in names if c in ev.index and ev[c] > 0]
    if not moving and len(ev):
        out.append("In eval mode every trained model gives identical results on every pass.")
    elif moving:
        out.append(
            f"In eval mode predictions still change between passes in {join_names(moving)} (nondeterministic "
            "kernels); every other condition repeats itself exactly."
        )
    same = [c for c in names if train_equals_mc_dropout(by_cond[c])]
    if same:
        out.append(
            f"MC dropout gives exactly the train-mode passes in {_where(same, names)}: without BatchNorm, "
            "train mode only switches dropout on."
        )
    v = tables.variance_components
    still = (
        [c for c in names if ((v["condition"] == c) & (v["mode"] == TRAIN) & (v["within"] == 0)).any()]
        if not v.empty
        else []
    )
    if still:
        out.append(
            f"Train-mode passes repeat their predictions exactly in {_where(still, names)} (no dropout is "
            "active), so all train-mode spread there is training randomness."
        )
    return out


def _by_mode(table: pd.DataFrame, cond: str) -> pd.DataFrame:
    return table[table["condition"] == cond].set_index("mode") if not table.empty else pd.DataFrame()


def _gaps(table: pd.DataFrame, cond: str) -> pd.DataFrame:
    return table[table["condition"] == cond] if not table.empty else pd.DataFrame()


def train_equals_mc_dropout(group: list[LoadedRun]) -> bool:
    """Every model's train-mode passes equal its MC-dropout passes: no BatchNorm, dropout alone moves them."""
    return all(
        {TRAIN, MC_DROPOUT} <= set(r.modes)
        and np.array_equal(r.preds.passes[TRAIN], r.preds.passes[MC_DROPOUT])
        for r in group
    )


def condition_paragraph(cond: str, group: list[LoadedRun], tables: Tables) -> str:
    """How much one condition's accuracy varies per mode, and where the spread comes from."""
    a, v, f = (
        _by_mode(tables.accuracy, cond),
        _by_mode(tables.variance_components, cond),
        _by_mode(tables.flip_rates, cond),
    )
    same = train_equals_mc_dropout(group)
    parts = []
    for mode in STOCHASTIC_MODES:
        if mode not in a.index or (mode == MC_DROPOUT and same):
            continue
        parts.append(_stochastic_mode(cond, mode, group, a, v, f, same, _gaps(tables.mode_gaps, cond)))
    if EVAL in a.index:
        parts.append(_eval_mode(a.loc[EVAL], f))
    return " ".join(parts)


def _eval_mode(e: pd.Series, f: pd.DataFrame) -> str:
    runs = int(e["runs"])
    flip = f.loc[EVAL, "flip_rate"] if EVAL in f.index else float("nan")
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


def _stochastic_mode(
    cond: str,
    mode: str,
    group: list[LoadedRun],
    a: pd.DataFrame,
    v: pd.DataFrame,
    f: pd.DataFrame,
    same: bool,
    gaps: pd.DataFrame | None = None,
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
            d = share_decimals(c["share_within_ci_low"], c["share_within_ci_high"])
            text += (
                f"; {c['share_within']:.{d}f}% (CI {c['share_within_ci_low']:.{d}f}-"
                f"{c['share_within_ci_high']:.{d}f}%) of that variance comes from test-time dropout, "
                f"{c['share_between']:.{d}f}% from training randomness"
            )
            text += unequal_passes_clause(c.get("pass_variance_equal_p", np.nan))
    text += "."
    decompose = mode == TRAIN and not same and gaps is not None and not gaps.empty
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
        if EVAL in a.index and not decompose:
            gap = row["mean"] - a.loc[EVAL, "mean"]
            text += f"; on average it is {abs(gap):.2f} points {'lower' if gap < 0 else 'higher'} than in eval mode"
        text += "."
    if decompose:
        text += " " + decomposition_sentence(gaps)
    if mode == TRAIN and same:
        text += (
            " MC dropout gives exactly the same passes: the model has no BatchNorm, so train mode "
            "only switches dropout on."
        )
    return text


def unequal_passes_clause(p: float) -> str:
    """Said beside the components when dropout moves some trained models more than others: their
    intervals assume one pass variance (`components.equal_pass_variance_p` gives the measured cost)."""
    if not p < ALPHA:
        return ""
    return (
        f"; the passes spread unequally between its trained models (Brown-Forsythe p = {p:.2g}), which these "
        "intervals assume equal: with pass stds varying by half between models the share's interval covers "
        "about 0.87-0.90 instead of 0.95"
    )


def share_decimals(lo: float, hi: float) -> int:
    """Decimals for a share in % and its CI: whole percents unless the interval is narrower than one,
    so that a tight interval never reads as "1% (CI 1-1%)"."""
    width = hi - lo if np.isfinite(lo) and np.isfinite(hi) else 100.0
    return 0 if width >= 1 else 1 if width >= 0.1 else 2


def _ci(lo: float, hi: float, fmt: str = "+.2f") -> str:
    return f"CI {lo:{fmt}} to {hi:{fmt}}" if np.isfinite(lo) and np.isfinite(hi) else "no CI"


def decomposition_sentence(gaps: pd.DataFrame) -> str:
    """train - eval = BatchNorm batch statistics + dropout, as means over trained models with CIs."""
    g = gaps.set_index("part")
    t, bn, do = g.loc["total"], g.loc["batchnorm"], g.loc["dropout"]
    n = int(t["n"])
    return (
        f"Over its {n} trained model{'s' if n > 1 else ''}, train mode differs from eval mode by "
        f"{t['mean']:+.2f} points on average ({_ci(t['ci_low'], t['ci_high'])}): BatchNorm batch statistics "
        f"(train - mc_dropout) account for {bn['mean']:+.2f} ({_ci(bn['ci_low'], bn['ci_high'])}) and "
        f"dropout (mc_dropout - eval) for {do['mean']:+.2f} ({_ci(do['ci_low'], do['ci_high'])})."
    )


def test_noise_sentence(cond: str, tables: Tables) -> str:
    """Of the seed-to-seed std, how much is the finite test set and how much the models themselves."""
    t = tables.test_noise
    if t.empty or cond not in set(t["condition"]):
        return ""
    r = t.set_index("condition").loc[cond]
    if not r["seed_var"] > SPREAD_FLOOR:  # no spread across seeds (float noise aside): nothing to split
        return ""
    floor = (
        f"; the binomial term sqrt(p(1-p)/n), an upper bound on the test set's part, is "
        f"{r['binomial_bound_std']:.2f} points ({int(r['halvings'])} random halvings, seed {int(r['halving_seed'])})."
    )
    lo, hi = (np.clip(r[k], 0, 100) for k in ("test_set_share_ci_low", "test_set_share_ci_high"))
    d = share_decimals(lo, hi)
    if r["test_set_share"] >= 100:  # the estimate of the test set's part exceeds the whole spread
        # a share at its bound is an estimate like any other: its interval says how far below 100% the
        # truth may lie (at 3 seeds a true share of 12-54% reads 100% in 13-41% of studies)
        return (
            f"The {r['seed_std']:.2f}-point seed-to-seed std in eval mode is no larger than what the finite "
            f"test set ({r['test_samples']:,.0f} samples per model) gives alone ({r['test_set_std']:.2f} points; "
            f"its share of the variance {_ci(lo, hi, f'.{d}f')}%): "
            "the models' own differences cannot be told apart from test-set noise" + floor
        )
    text = (
        f"Of the {r['seed_std']:.2f}-point seed-to-seed std in eval mode, the finite test set "
        f"({r['test_samples']:,.0f} samples per model) accounts for {r['test_set_std']:.2f} points "
        f"({r['test_set_share']:.{d}f}% of the variance, {_ci(lo, hi, f'.{d}f')}%)"
    )
    if r["models_var"] > 0:
        text += f" and the models themselves for {r['models_std']:.2f} points"
    else:
        text += " and the models themselves for none that can be told apart from it"
    return text + floor + non_normal_sentence(r.get("seed_normality_p", np.nan), int(r["models"]))


def non_normal_sentence(p: float, models: int) -> str:
    """Said when the seeds' eval accuracies look non-normal: every interval over seeds assumes they are not
    far from it, and heavy tails (a few clearly worse seeds) cost coverage no small-n method wins back."""
    if not p < NON_NORMAL_P:
        return ""
    robust = (
        "the variance intervals are hulled with Bonett's kurtosis-robust one"
        if models >= 5
        else "under 5 seeds no interval of a variance can allow for it (with 10% of seeds 4 stds worse, "
        "chi-square covers about 0.90 at 3 seeds)"
    )
    return (
        f" The {models} seeds' eval accuracies look non-normal (Shapiro-Wilk p = {p:.2g}; a few clearly "
        f"worse seeds are the usual cause): {robust}, and the intervals of means hold less than 95%."
    )


def degenerate_sentence(cond: str, tables: Tables) -> str:
    """What is degenerate (or suspect) about a condition, first, so no number after it is read as a finding."""
    d = tables.degenerate
    if d.empty:
        return ""
    rows = d[(d["condition"] == cond) & d["suspect"]]
    if rows.empty:
        return ""
    parts = []
    for r in rows.itertuples():
        what = []
        if r.at_chance:
            what.append(f"{r.at_chance} of {r.models} trained models are at chance level ({r.chance:.2f}%)")
        if r.one_class:
            what.append(f"{r.one_class} of {r.models} predict a single class")
        if r.tied:
            what.append(f"all {r.models} give the same accuracy")
        parts.append(f"in {r.mode} mode " + ", ".join(what))
    bad = cond in tables.degenerate_conditions
    text = f"{'Degenerate' if bad else 'Warning'}: {cond} " + "; ".join(parts) + "."
    if bad:
        text += " No power analysis or ranking is drawn from it."
    return text


def split_sentences(splits: pd.DataFrame) -> list[str]:
    """How much the test windows of each condition see training pixels, and what a spatial split gave up;
    said once when every condition split alike."""
    if splits.empty:
        return []
    said = []
    for r in splits.itertuples():
        w = r.window
        text = f"{r.leakage_mean:.1f}% of test pixels have a training pixel in their {w}x{w} window"
        if r.split == "spatial":
            text += (
                f" (blocks of {r.block}x{r.block} pixels; {r.gap_pixels:,.0f} pixels left out as the gap on "
                f"average; classes on one side only: {r.one_sided_classes})"
            )
        name = r.condition if "split=" in r.condition else f"{r.condition} ({r.split} split)"
        said.append((name, text, r.split))
    if len(said) > 1 and len({(text, split) for _, text, split in said}) == 1:
        return [f"Leakage: in every condition ({said[0][2]} split), {said[0][1]}."]
    return ["Leakage: " + "; ".join(f"{name}: {text}" for name, text, _ in said) + "."]


def source_sentences(per_source: pd.DataFrame) -> list[str]:
    """Per condition: each source's eval-accuracy variance as a ratio to `all`, and whether the F
    intervals tell any sources apart (no ranking is claimed where they overlap)."""
    out = []
    if per_source.empty:
        return out
    for cond, g in per_source.groupby("condition", sort=False):
        ref = g[g["source"] == REFERENCE]
        rest = g[g["source"] != REFERENCE]
        if rest.empty:
            continue
        n = ", ".join(sorted({str(int(v)) for v in rest["n"]}))
        listed = ", ".join(
            f"{r.source} {r.ratio_to_all:.2f} ({r.ratio_ci_low:.2f}-{r.ratio_ci_high:.2f})"
            if np.isfinite(r.ratio_ci_low)
            else f"{r.source} {r.ratio_to_all:.2f}"
            for r in rest.itertuples()
        )
        text = f"Varied alone, the sources of training randomness give {cond} this much of the eval-accuracy variance it has with every source varied"
        if not ref.empty and np.isfinite(ref["std"].iloc[0]):
            text += f" (std {ref['std'].iloc[0]:.2f} points, {int(ref['n'].iloc[0])} replicates)"
        text += f", as a ratio with a 95% F interval ({n} replicates each): {listed}."
        cis = {
            r.source: (r.ratio_ci_low, r.ratio_ci_high)
            for r in rest.itertuples()
            if np.isfinite(r.ratio_ci_low) and np.isfinite(r.ratio_ci_high)
        }
        apart = sources.disjoint_pairs(cis)
        if len(cis) >= 2 and not apart:
            text += " All intervals overlap, so these replicates do not rank the sources."
        elif apart:
            text += (
                " Only these are told apart (intervals that do not overlap): "
                + ", ".join(f"{hi} above {lo}" for hi, lo in apart)
                + "; the other intervals overlap, so no further ranking is claimed."
            )
        whole = [k for k, (lo, hi) in cis.items() if lo <= 1.0 <= hi]
        if whole:
            allow = ", ".join(f"{k} {cis[k][0]:.2g}x to {cis[k][1]:.2g}x" for k in whole)
            text += (
                f" {join_names(whole)} cannot be told apart from the whole variance alone (its interval holds 1); "
                f"the data allow {allow} of it, so this says little about how much each source gives."
            )
        out.append(text)
    return out
