"""The report's sections, each a writer of its words and layout (tables and figures come from the entries
of analysis.registry that name it): seedvar's studies first, then the report of one metric of runs seedvar
did not train, then the claims both hold against their seeds."""

from __future__ import annotations

import pandas as pd

from seedvar.analysis import conditions, figures, glance, sentences, stages
from seedvar.analysis.foreign import MetricRuns
from seedvar.analysis.pipeline import Tables
from seedvar.analysis.render import Section
from seedvar.stats.interval import ALPHA
from seedvar.stats.power import POWER, REACHED


def several(t: Tables) -> bool:
    """A study of several conditions opens with its table of conditions and a paragraph per condition."""
    return len(t.conditions) > 1


def glance_part(t: Tables) -> Section:
    headline, bullets = glance.answer(t)
    return Section("At a glance", headline=headline, bullets=bullets)


def two_stage_said(t: Tables) -> list[str]:
    """What the two-stage rule decided, when the study's spec set a target."""
    target = t.study.target
    return stages.sentences(t.two_stage, target) if target else []


def answer_part(t: Tables) -> Section:
    return Section(
        "The answer",
        text=sentences.answer(t) + two_stage_said(t),
        tables_first=True,
        whole=True,
        answer=True,
    )


def two_stage_part(t: Tables) -> Section | None:
    return Section("Seeds decided by the data", text=[stages.EXPLAINED]) if two_stage_said(t) else None


def each_condition_part(t: Tables) -> Section | None:
    if not several(t):
        return None
    return Section("Each condition", text=sentences.condition_paragraphs(t))


def settings_part(t: Tables) -> Section:
    return Section("Study settings", folded=True)


def values_part(t: Tables) -> Section:
    return Section(
        "Accuracy by model and test mode",
        text=[
            "Accuracy in percentage points over every test pass of every trained model; `seed std` is the "
            "spread of per-model means (training randomness alone); the 95% CI of the mean is Student's "
            "t-interval over the per-model means, its std at least `resolution` / sqrt(12) (`resolution`: "
            "100 / test samples, the grid an accuracy lies on), which holds 95% from 3 seeds up."
        ],
    )


def flips_part(t: Tables) -> Section:
    return Section(
        "Prediction flips",
        text=[
            "`flip rate`: the share of test samples whose predicted class differs between two passes of the "
            "same trained model (mean over pairs of passes and over models). `churn`: the share that differs "
            "between two trained models in eval mode (mean over pairs, on the test samples they share)."
        ],
    )


def sources_part(t: Tables) -> Section | None:
    if t.per_source.empty:
        return None
    return Section(
        "Sources of training randomness against all of them",
        text=[
            "Each source row varies one source of randomness across replicates and holds every other at "
            "the base seed; `all` varies every source together (the reference, ordinary seeds); "
            "`numerical` repeats identical seeds, so only nondeterministic kernels can move it. "
            "`ratio_to_all` is a source's variance of eval accuracy over the `all` variance; its 95% "
            "interval comes from the F distribution (scipy.stats.f) and assumes normal accuracies. "
            "Sources varied one at a time do not add up to `all`, so no shares of a sum are given; "
            "overlapping intervals rank nothing."
        ],
    )


def history_part(t: Tables) -> Section | None:
    return None if t.curves.empty else Section("Training curves")


def maps_part(t: Tables) -> Section | None:
    if not t.maps:
        return None
    return Section(
        "Classification maps",
        text=[
            f"{m.condition}, model {m.run}: {m.flipped} of {len(m.pass_a)} test pixels change class "
            f"between two {m.mode}-mode passes of the same trained model; in eval mode none can."
            for m in t.maps[: figures.MAX_MAPS]
        ]
        + (
            [f"Maps of the first {figures.MAX_MAPS} of {len(t.maps)} conditions."]
            if len(t.maps) > figures.MAX_MAPS
            else []
        )
        + [
            "The split panel shows the training pixels (dark), the test pixels (light) and, for a "
            "spatial split, the labelled pixels left out as the gap (orange) so that no test window "
            "holds a training pixel."
        ],
    )


def twins_part(t: Tables) -> Section | None:
    """The implementation twins (tables/twins.csv), when the study trained any."""
    if t.twins.empty:
        return None
    return Section(
        "Implementation twins: the same seeds, another implementation",
        text=[
            "Twins are runs of the same seeds that differ in one implementation setting only (`setting`; `a` "
            "at its reference value: deterministic kernels, the fewest threads, fp32, the CPU). `pairs`: twin "
            "pairs; `identical_weights`: pairs with the same weights sha256; `churn`: the share of test "
            "samples (%) whose eval prediction differs between twins, `churn_seeds` the same between "
            "different seeds of a and of b; `diff_std`: the std of the twins' eval accuracy differences "
            "(points) with its 95% chi-square interval; `share`: the implementation's share of one run's "
            "seed variance (%), from the variances of the pairs' differences and sums, its 95% interval from "
            "the F distribution (exact for normal accuracies; covered 94-96% at 3-10 pairs in simulation); "
            "`time_ratio`: b's seconds per epoch (the last epoch) over a's, geometric mean over pairs. "
            "`churn`'s 95% interval: a gamma mean's (Krishnamoorthy et al. 2008, on the cube-root scale: "
            "churn is skewed across seeds), hulled with the exact binomial interval of the pooled counts; "
            "`time_ratio`'s: the t-interval of the log ratios. Both covered 94-96% at 3-30 pairs in "
            "simulation, 90% at 3 pairs when a third of them are bit-identical (README).",
        ],
    )


def test_noise_part(t: Tables) -> Section | None:
    if t.test_noise.empty:
        return None
    methods = list(dict.fromkeys(t.test_noise["ci_method"]))
    return Section(
        "Test-set noise: the finite test set against the models",
        text=[
            "Each test sample is a coin flip for a trained model, so eval accuracy on n samples varies across "
            "models even at equal distribution-level accuracy (Jordan 2023). The test samples are split at "
            "random into halves A and B (stratified by class, matched by sample id across models); across "
            "models cov(acc_A, acc_B) estimates the variance of the models' distribution-level accuracy "
            "(`models`), and the rest of var(acc) is test-set sampling noise (`test_set`, computed as "
            "var(acc_A - acc_B) / 4, which equals var(acc) - cov(acc_A, acc_B) for equal halves). "
            "Averaged over many random halvings; variances in points², stds in points. The binomial "
            "term sqrt(p(1-p)/n), the test-set std if every sample were an independent coin flip at the "
            "mean accuracy p, is an upper bound on the test set's part (Jensen's inequality).",
            *(f"95% CIs: {m}." for m in methods),
        ],
    )


def mode_gaps_part(t: Tables) -> Section | None:
    if t.mode_gaps.empty:
        return None
    return Section(
        "Train mode: BatchNorm batch statistics and dropout",
        text=[
            "Train mode turns on both BatchNorm batch statistics and dropout; MC dropout turns on dropout "
            "only. So per trained model train - eval = (train - mc_dropout) + (mc_dropout - eval): the "
            "first part is BatchNorm, the second dropout. Means over trained models in points, with the 95% "
            "t-interval of the mean of the paired differences (zero width where every model gives exactly "
            "0: no BatchNorm or no dropout)."
        ],
    )


def degenerate_part(t: Tables) -> Section:
    """One line when nothing is degenerate or suspect (the table folded below it); else the flags."""
    how = [
        "Per condition and mode: models whose accuracy is not significantly above chance (the share of the "
        f"most frequent test class; one-sided exact binomial test at {ALPHA:g}), models that predict a single "
        "class in every pass, and whether all models tie (`tied`: the same accuracy on every seed, as models "
        "at 100% do; ties are data, never degenerate). `degenerate`: every model at chance or predicting "
        "one class; `suspect`: some models are."
    ]
    bad = t.degenerate_conditions
    d = t.degenerate
    if d.empty or not d["suspect"].any():
        return Section(
            "Degenerate runs",
            text=[
                "No degenerate runs: every trained model scores above chance in every mode, and none "
                "predicts a single class."
            ],
            fold_tables=True,
            details=how,
        )
    text = list(how)
    if bad:
        text.append(
            f"Degenerate in eval mode: {', '.join(bad)}. No power analysis or comparison is drawn from "
            "these conditions."
        )
    else:
        text.append("No condition is degenerate in eval mode.")
    return Section("Degenerate runs", text=text)


def splits_part(t: Tables) -> Section | None:
    if t.splits.empty:
        return None
    return Section(
        "Train/test split and leakage",
        text=[
            "`leakage`: the share of test pixels (%) whose window holds at least one training pixel, so "
            "the model was trained on part of what it is tested on (Nalepa et al. 2019). A random pixel "
            "split leaks nearly everywhere; a spatial split assigns whole blocks to train or test and "
            "leaves out the test pixels within half a window of a training pixel (the gap), so none leaks. "
            "Classes whose pixels could not land on both sides are named; they are kept, not dropped."
        ],
    )


def variance_part(t: Tables) -> Section:
    if t.variance_components.empty:
        return Section(
            "Variance components",
            text=["Variance components need at least two trained models and two passes per model."],
        )
    methods = list(dict.fromkeys(t.variance_components["ci_method"]))
    return Section(
        "Variance components",
        text=[
            "One-way random-effects model per model and mode: *between* = variance between trained models "
            "(training randomness), *within* = variance across the test passes of one model (test-time "
            "dropout), both in points². The ANOVA estimator on a balanced design (each model's first passes, "
            "as many as the model with the fewest has; negative estimates truncated at 0, flagged).",
            *(f"95% CIs: {m}." for m in methods),
        ],
    )


def comparisons_part(t: Tables) -> Section:
    """Pairwise tests between conditions (eval accuracy, one value per trained model), and power."""
    sec = Section("Comparisons and power")
    if t.degenerate_conditions:
        sec.text.append(
            f"Left out as degenerate: {', '.join(t.degenerate_conditions)} (see Degenerate runs)."
        )
    if not t.power.empty:
        diffs = ", ".join(f"{d:.3g}" for d in dict.fromkeys(t.power_diffs))  # as the power table's columns
        sec.text.append(
            f"Replicates per condition needed to detect a difference of {diffs} accuracy points (the last: the "
            f"closest pair's) against a condition of the same spread, with {POWER:.0%} power at alpha {ALPHA:g}, sized at "
            f"{t.spread.how()} (each std at least the test set's resolution / sqrt(12)). Sized this way the "
            f"recommended n reaches {POWER:.0%} power in {REACHED} of simulated studies; at the observed std, in about "
            "half (the README's table)."
        )
    if not t.comparisons.empty:
        sec.text.append(
            "Welch's t-test of the difference of mean eval accuracy, with its 95% t-interval and Holm-adjusted "
            "p-values across all pairs; P(A > B) is the probability that a trained model of A scores above one "
            "of B (an effect size, not a test), under normal seeds of equal spread, with its exact 95% interval "
            "(noncentral t). No rank test is given: at 3 seeds a side Mann-Whitney's smallest two-sided p is "
            "0.1, so it cannot reject there."
        )
    if t.twin_conditions:
        sec.text.append(
            f"Not compared: {', '.join(t.twin_conditions)}, twins of another condition (the same seeds under "
            "another implementation; see Implementation twins)."
        )
    if t.comparisons.empty and not t.twin_conditions:
        sec.text.append("Comparisons need at least two trained models per condition.")
    return sec


def left_out_part(t: Tables) -> Section:
    if t.failed_runs.empty:
        return Section("Failed and unfinished runs", text=["None: every run finished."])
    return Section(
        "Failed and unfinished runs",
        text=[f"{len(t.failed_runs)} run(s) did not finish; they are left out above."],
        fold_tables=True,
    )


# The report of one metric

DIGITS = 4  # significant digits of a metric's tables on the page (the CSVs keep every digit)
NO_PREDICTIONS = (
    "Left out, because these runs logged a metric and not seedvar's predictions: the test modes (eval, train, "
    "MC dropout), prediction flips and churn, the test set's share of the spread and classification maps."
)


def metric_glance_part(t: Tables) -> Section:
    headline, bullets = glance.metric_answer(t.conditions, t.comparisons, t.metric)
    return Section("At a glance", headline=headline, bullets=bullets, digits=DIGITS)


def metric_answer_part(t: Tables) -> Section:
    """What the seeds tell apart, the groups, the ranking, the closest pair and the seeds it needs, Stein's
    seeds for a narrower interval (`half_width`; default half of each interval's present width)."""
    runs, table, metric = t.metric_runs, t.conditions, t.metric
    answer = [intro(runs, table)]
    if len(table) > 1:
        answer += conditions.verdict(table, t.comparisons, metric, spread=t.spread)
    else:
        answer.append(alone(table.iloc[0], metric))
    singles = list(table.loc[table["runs"] < 2, "condition"])
    if singles:
        answer.append(
            f"{conditions.join_names(singles)} {'has' if len(singles) == 1 else 'have'} one run: reported without "
            "an interval or a comparison (a spread needs two)."
        )
    answer += [x for x in [conditions.stein_sentence(table, metric, t.half_width)] if x]
    if runs.resolution > 0:
        answer.append(
            f"Each condition's std is at least the {runs.resolution_source} / sqrt(12): seeds that tie still "
            "have a spread, so tied conditions are ranked and compared (`--resolution R` sets it)."
        )
    if runs.bounds is not None:
        lo, hi = runs.bounds
        answer.append(
            f"Every interval keeps to {metric.name}'s range, {lo:g} to {hi:g} (--bounds); within a few steps of "
            "a bound it also holds the count interval of the steps missing, as seedvar's accuracy near 100% does."
        )
    answer.append(NO_PREDICTIONS)
    return Section("The answer", text=answer, tables_first=True, whole=True, answer=True, digits=DIGITS)


def metric_values_part(t: Tables) -> Section:
    return Section(
        "Values per condition",
        text=[
            f"In the figure at the top, each point is one run's {t.metric.name}; the box spans its "
            "condition's runs. The 95% CI of a condition's mean is Student's t-interval over its runs "
            "(coverage checked by simulation: see the README's table)."
        ],
        digits=DIGITS,
    )


def metric_history_part(t: Tables) -> Section | None:
    if t.histories.empty:
        return None
    name = t.metric.name
    return Section(
        f"{name} over steps",
        text=[f"Mean ± 1 sd of {name} at each logged step over each condition's runs."],
        digits=DIGITS,
    )


def metric_left_out_part(t: Tables) -> Section:
    left, name = t.left_out, t.metric.name
    return Section(
        "Runs left out",
        text=[
            f"{len(left)} run(s) left out: not finished, or no value of {name}."
            if len(left)
            else "None: every run finished with a value."
        ],
    )


def intro(runs: MetricRuns, table: pd.DataFrame) -> str:
    left = len(runs.left_out)
    reasons = runs.left_out["reason"].value_counts() if left else pd.Series(dtype=int)
    why = "; ".join(f"{n} {r}" for r, n in reasons.items())
    return (
        f"{runs.source}: {len(runs.table)} finished run(s) with a value of {runs.metric} in {len(table)} "
        f"condition(s){f', {left} left out ({why})' if left else ''}. {runs.chosen} "
        + ("Lower is better." if runs.lower_is_better else "Higher is better.")
    )


def alone(row: pd.Series, metric: conditions.Metric) -> str:
    """One condition: its spread alone."""
    if row["runs"] < 2:
        return f"{row['condition']}: {metric.name} {metric.value(row['mean'])} from its one run."
    return (
        f"{row['condition']}: {metric.name} {metric.value(row['mean'])} on average over {int(row['runs'])} runs "
        f"(std {row['std']:.3g}; 95% CI of the mean {row['ci_low']:.4g} to {row['ci_high']:.4g})."
    )


def metric_comparisons_part(t: Tables) -> Section:
    sec = Section("Comparisons and power", digits=DIGITS)
    comps = t.comparisons
    if comps.empty:
        sec.text.append("Comparisons need at least two conditions with 2+ runs each.")
        return sec
    sec.text.append(
        "Welch's t-test of each pair's difference of means, with its 95% t-interval and Holm-adjusted p-values "
        "over all pairs; P(A > B) is the probability that a run of A scores above one of B (an effect size), "
        "under normal seeds of equal spread, with its exact 95% interval (noncentral t)."
    )
    if t.power_diffs:  # --target-diff, else the closest pair's difference (conditions.power_diffs)
        sec.text.append(
            f"Runs per condition needed to tell apart a difference of {t.power_diffs[-1]:.3g} from a condition of "
            f"the same spread ({POWER:.0%} power, two-sided at {ALPHA:g}), sized at {t.spread.how()}; sized this "
            f"way the n reaches {POWER:.0%} power in {REACHED} of simulated studies"
            + (
                "."
                if t.target_diff
                else ". The difference is the closest pair's; choose another with --target-diff."
            )
        )
    return sec


# Both kinds


def claims_part(t: Tables) -> Section | None:
    """Published numbers (--claim, a spec's claims) held against each condition's seeds: the lab's "was
    96.89 a lucky seed?"."""
    if not t.claimed:
        return None
    return Section("Was it a lucky seed?", text=t.claims_held.text)
