"""Step 2 of the report: the loaded runs become tables (pandas DataFrames), one function per table.

Accuracies are in percentage points. Every function takes plain data (LoadedRun objects) and returns a
DataFrame, so each can be tested on synthetic runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seedvar.analysis import conditions as compared
from seedvar.analysis import twins as twin_pairs
from seedvar.analysis.load import LoadedRun, StudyRuns
from seedvar.analysis.maps import MapData, map_data
from seedvar.analysis.setup import conditions, failure_table, settings_table, split_table
from seedvar.record.reader import reference_runs
from seedvar.results import EVAL, MODES, REFERENCE, TRAIN, points
from seedvar.stats import components, degenerate, flips, modes, sources, testnoise
from seedvar.stats.interval import PooledSummary, mean_interval, resolution_of
from seedvar.stats.power import Spread

BOUNDS = (0.0, 100.0)  # accuracy in points
POWER_DIFFS = (1.0, 0.5)  # points: the differences the power table sizes seeds for


def groups(finished: list[LoadedRun]) -> dict[tuple[str, str], list[LoadedRun]]:
    """Runs by (condition, mode), in a stable order."""
    out: dict[tuple[str, str], list[LoadedRun]] = {}
    for r in finished:
        for mode in r.modes:
            out.setdefault((r.label, mode), []).append(r)
    return out


def resolution(group: list[LoadedRun]) -> float:
    """The accuracy grid of a group of trained models, in points: 100 / (the fewest test samples)."""
    return resolution_of([len(r.preds.labels) for r in group])


def pass_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """One row per test pass of every trained model: what the accuracy figure draws."""
    rows = [
        {"condition": r.label, "model": r.model, "run": r.name, "mode": mode, "pass": p, "accuracy": a}
        for r in finished
        for mode in r.modes
        for p, a in enumerate(r.accuracy(mode))
    ]
    return pd.DataFrame(rows)


def accuracy_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Per condition and mode: the pooled summary over every pass, the seed-to-seed std and the 95%
    t-interval of the mean over trained models (seedvar.stats.interval)."""
    rows = []
    for (cond, mode), group in groups(finished).items():
        pooled = PooledSummary.of_passes([r.accuracy(mode) for r in group])
        means = np.array([r.accuracy(mode).mean() for r in group])
        s = mean_interval(means, resolution=resolution(group), bounds=BOUNDS)
        rows.append(
            {
                "condition": cond,
                "mode": mode,
                "runs": pooled.runs,
                "passes": pooled.passes,
                "mean": pooled.mean,
                "std": pooled.std,
                "seed_std": s.std if len(means) > 1 else 0.0,
                "resolution": resolution(group),
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "min": pooled.min,
                "max": pooled.max,
            }
        )
    return pd.DataFrame(rows)


def variance_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Between-model and within-model variance per condition and mode (needs 2+ models, 2+ passes), on a
    balanced design: each model's first passes, as many as the model with the fewest has."""
    rows = []
    for (cond, mode), group in groups(finished).items():
        per_model = components.balanced([r.accuracy(mode) for r in group])
        if len(group) < 2 or len(per_model[0]) < 2:  # one pass per model: within and between are one
            continue
        values = np.concatenate(per_model)
        ids = np.repeat(np.arange(len(per_model)), len(per_model[0]))
        v = components.variance_components(values, ids)
        rows.append(
            {
                "condition": cond,
                "mode": mode,
                "models": v.n_groups,
                "passes": v.n_obs,
                "between": v.between,
                "between_ci_low": v.between_ci[0],
                "between_ci_high": v.between_ci[1],
                "within": v.within,
                "within_ci_low": v.within_ci[0],
                "within_ci_high": v.within_ci[1],
                "share_within": points(v.share_within),
                "share_within_ci_low": points(v.share_within_ci[0]),
                "share_within_ci_high": points(v.share_within_ci[1]),
                "share_between": points(v.share_between),
                "share_between_ci_low": points(v.share_between_ci[0]),
                "share_between_ci_high": points(v.share_between_ci[1]),
                "pass_variance_equal_p": components.equal_pass_variance_p(per_model),
                "method": v.method,
                "truncated": v.truncated,
                "ci_method": v.ci_method,
            }
        )
    return pd.DataFrame(rows)


def flip_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Flip rate between passes of one model (%) per condition and mode; churn between models in eval."""
    rows = []
    for (cond, mode), group in groups(finished).items():
        rates = [flips.flip_rate(r.preds.passes[mode]) for r in group if len(r.preds.passes[mode]) > 1]
        rows.append(
            {
                "condition": cond,
                "mode": mode,
                "models": len(group),
                "flip_rate": points(float(np.mean(rates))) if rates else float("nan"),
                "churn_between_models": (
                    points(flips.mean_churn([(r.preds.ids, r.preds.passes[EVAL][0]) for r in group]))
                    if mode == EVAL and len(group) > 1
                    else float("nan")
                ),
            }
        )
    return pd.DataFrame(rows)


def test_noise_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Per condition: the eval-mode seed-to-seed variance split into the finite test set and the models.

    From each model's first eval pass, matched by test sample id (conditions with 3+ models, the fewest
    its intervals' coverage is checked at). Variances in points², stds in points, shares in %.
    """
    rows = []
    for cond in conditions(finished):
        group = [r for r in finished if r.label == cond and EVAL in r.modes]
        if len(group) < 3:
            continue
        ids, labels, correct = testnoise.correctness_matrix(
            [(r.preds.ids, r.preds.labels, r.preds.passes[EVAL][0]) for r in group]
        )
        t = testnoise.split_seed_variance(correct, labels)
        pts2 = 100.0**2
        rows.append(
            {
                "condition": cond,
                "models": t.models_n,
                "test_samples": t.samples,
                "seed_std": points(np.sqrt(t.total)),
                "test_set_std": points(np.sqrt(max(t.test_set, 0.0))),
                "models_std": points(np.sqrt(max(t.models, 0.0))),
                "binomial_bound_std": points(np.sqrt(t.binomial_bound)),
                "test_set_share": points(t.share_test_set),
                "test_set_share_ci_low": points(t.share_test_set_ci[0]),
                "test_set_share_ci_high": points(t.share_test_set_ci[1]),
                "seed_var": pts2 * t.total,
                "seed_var_ci_low": pts2 * t.total_ci[0],
                "seed_var_ci_high": pts2 * t.total_ci[1],
                "test_set_var": pts2 * t.test_set,
                "models_var": pts2 * t.models,
                "models_var_ci_low": pts2 * t.models_ci[0],
                "models_var_ci_high": pts2 * t.models_ci[1],
                "seed_normality_p": t.normality_p,
                "halvings": t.halvings,
                "halving_seed": t.seed,
                "ci_method": t.ci_method,
            }
        )
    return pd.DataFrame(rows)


def mode_gap_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Per condition with all three modes: train - eval split into BatchNorm and dropout parts (points)."""
    tables = []
    for cond in conditions(finished):
        group = [r for r in finished if r.label == cond and set(MODES) <= set(r.modes)]
        if not group:
            continue
        acc = {m: np.array([r.accuracy(m).mean() for r in group]) for m in MODES}
        t = modes.mode_gaps(acc, resolution=resolution(group))
        t.insert(0, "condition", cond)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def degenerate_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Per condition and mode: models at chance level, predicting one class, zero spread across seeds."""
    rows = []
    for (cond, mode), group in groups(finished).items():
        f = degenerate.flags([(r.preds.passes[mode], r.preds.labels) for r in group])
        rows.append({"condition": cond, "mode": mode, **f.as_dict(), "chance": points(f.chance)})
    return pd.DataFrame(rows)


def degenerate_conditions(flags: pd.DataFrame) -> list[str]:
    """Conditions whose eval mode is degenerate: no power or ranking is drawn from them."""
    if flags.empty:
        return []
    bad = flags[(flags["mode"] == EVAL) & flags["degenerate"]]
    return list(dict.fromkeys(bad["condition"]))


def source_values(finished: list[LoadedRun]) -> pd.DataFrame:
    """Eval accuracy of each trained model of a one-source-at-a-time study, by the source it varied
    (`all`: the reference with every source varied)."""
    if all(r.varied == REFERENCE for r in finished):
        return pd.DataFrame(columns=["condition", "source", "replicate", "accuracy"])
    varied = [r for r in finished if EVAL in r.modes]
    return pd.DataFrame(
        [
            {
                "condition": r.label,
                "source": r.varied,
                "replicate": r.replicate,
                "accuracy": r.accuracy(EVAL).mean(),
            }
            for r in varied
        ],
        columns=["condition", "source", "replicate", "accuracy"],
    )


def source_table(values: pd.DataFrame) -> pd.DataFrame:
    """Per condition and source: spread of eval accuracy and its variance as a ratio to `all` (F CI).

    Empty when no source was varied alone.
    """
    tables = []
    for cond, g in values.groupby("condition", sort=False):
        if set(g["source"]) <= {REFERENCE}:
            continue
        t = sources.ratios_to_reference(g["accuracy"].to_numpy(), g["source"].to_numpy(), reference=REFERENCE)
        t.insert(0, "condition", cond)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def power_diffs(comparisons: pd.DataFrame) -> list[float]:
    """The differences the power table sizes for: POWER_DIFFS and the closest pair's difference (points,
    rounded as its column is named)."""
    if comparisons.empty:
        return list(POWER_DIFFS)
    closest = float(comparisons["diff"].abs().min())
    return [*POWER_DIFFS, *([float(f"{closest:.3g}")] if closest > 0 else [])]


def eval_samples(finished: list[LoadedRun]) -> dict[str, np.ndarray]:
    """Mean eval accuracy of each trained model, by condition."""
    samples: dict[str, list[float]] = {}
    for r in finished:
        if EVAL in r.modes:
            samples.setdefault(r.label, []).append(r.accuracy(EVAL).mean())
    return {k: np.array(v) for k, v in samples.items()}


def eval_resolution(finished: list[LoadedRun]) -> dict[str, float]:
    """Each condition's accuracy grid in points (the floor of its intervals and tests)."""
    return {cond: resolution([r for r in finished if r.label == cond]) for cond in conditions(finished)}


SPREAD_FLOOR = 1e-9  # points²: a seed variance below this is float noise, not spread


def condition_table(
    accuracy: pd.DataFrame,
    mode_gaps: pd.DataFrame,
    variance: pd.DataFrame,
    flips: pd.DataFrame,
    test_noise: pd.DataFrame,
    ranked: pd.DataFrame,
) -> pd.DataFrame:
    """One row per condition, best eval accuracy first: what a several-condition answer opens with.

    Eval accuracy (mean over trained models, its 95% t-interval and the seed std, from `ranked`, the
    conditions compared as `analysis.conditions.summary` gives them), the train - eval gap with its
    BatchNorm (train - mc_dropout) and dropout (mc_dropout - eval) parts, the share of train-mode variance
    from test-time dropout, the train-mode flip rate, the finite test set's share of the eval seed
    variance (all in points or %; each share with its 95% interval), and the group letter: conditions sharing a letter are not told apart by
    the Holm-corrected comparisons (degenerate conditions are not compared). The test set's share is
    clipped to 0-100% (the test-noise table keeps the estimate).
    """

    def cell(table: pd.DataFrame, cond: str, column: str, **where: str) -> float:
        if table.empty:
            return float("nan")
        mask = table["condition"] == cond
        for key, value in where.items():
            mask &= table[key] == value
        found = table.loc[mask, column]
        return float(found.iloc[0]) if len(found) else float("nan")

    def test_set_share(cond: str) -> dict[str, float]:
        # no seed-to-seed spread (float noise aside): no share of it to speak of; an estimate above
        # 100% (few seeds) means the test set alone can give all of the spread
        keys = ("test_set_share", "test_set_share_ci_low", "test_set_share_ci_high")
        if not cell(test_noise, cond, "seed_var") > SPREAD_FLOOR:
            return dict.fromkeys(keys, float("nan"))
        return {k: float(np.clip(cell(test_noise, cond, k), 0, 100)) for k in keys}

    names = list(ranked["condition"]) + [
        c for c in dict.fromkeys(accuracy["condition"]) if c not in set(ranked["condition"])
    ]
    rows = []
    for cond in names:
        mean = cell(ranked, cond, "mean")
        gap = cell(mode_gaps, cond, "mean", part="total")
        if not np.isfinite(gap):  # no MC dropout: the gap without its parts
            gap = cell(accuracy, cond, "mean", mode=TRAIN) - mean
        found = ranked[ranked["condition"] == cond]
        rows.append(
            {
                "condition": cond,
                "seeds": int(cell(ranked, cond, "runs")) if len(found) else 0,
                "eval_mean": mean,
                "eval_ci_low": cell(ranked, cond, "ci_low"),
                "eval_ci_high": cell(ranked, cond, "ci_high"),
                "seed_std": cell(accuracy, cond, "seed_std", mode=EVAL),
                "train_minus_eval": gap,
                "batchnorm_part": cell(mode_gaps, cond, "mean", part="batchnorm"),
                "dropout_part": cell(mode_gaps, cond, "mean", part="dropout"),
                "dropout_share": cell(variance, cond, "share_within", mode=TRAIN),
                "dropout_share_ci_low": cell(variance, cond, "share_within_ci_low", mode=TRAIN),
                "dropout_share_ci_high": cell(variance, cond, "share_within_ci_high", mode=TRAIN),
                "flip_rate": cell(flips, cond, "flip_rate", mode=TRAIN),
                **test_set_share(cond),
                "group": found["group"].iloc[0] if len(found) else "–",
            }
        )
    return pd.DataFrame(rows)


def curve_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Training loss and accuracy (%) per epoch of every run: the curves' bands."""
    rows = [
        {
            "condition": r.label,
            "run": r.name,
            "epoch": step,
            "metric": metric,
            "value": value * (100 if metric == "acc" else 1),
        }
        for r in finished
        for metric, history in r.curves.items()
        for step, value in history
    ]
    if not rows:
        return pd.DataFrame()
    return (
        pd.DataFrame(rows)
        .pivot_table(index=["condition", "run", "epoch"], columns="metric", values="value")
        .reset_index()
    )


@dataclass
class Tables:
    """Every table of a report, computed once from the loaded runs."""

    passes: pd.DataFrame
    accuracy: pd.DataFrame
    variance: pd.DataFrame
    test_noise: pd.DataFrame
    mode_gaps: pd.DataFrame
    degenerate: pd.DataFrame
    splits: pd.DataFrame
    flips: pd.DataFrame
    settings: pd.DataFrame
    source_values: pd.DataFrame
    per_source: pd.DataFrame
    power: pd.DataFrame
    comparisons: pd.DataFrame
    ranked: pd.DataFrame  # the conditions compared on eval accuracy (analysis.conditions.summary)
    curves: pd.DataFrame
    failures: pd.DataFrame
    maps: list[MapData]
    conditions: pd.DataFrame  # one row per condition: what a several-condition answer opens with
    spread: Spread  # the seed stds every seed count is sized at (pooled where compatible, at a bound)
    twins: pd.DataFrame  # implementation twins: same seeds, another implementation (analysis.twins)
    twin_conditions: list[str]  # the conditions that are twins of another: never ranked

    @property
    def degenerate_conditions(self) -> list[str]:
        return degenerate_conditions(self.degenerate)


def build(study: StudyRuns) -> Tables:
    """All tables of the report; per-condition statistics from each condition's reference runs."""
    finished = study.finished
    ref = reference_runs(finished)
    values = source_values(finished)
    flags = degenerate_table(ref)
    bad = degenerate_conditions(flags)
    samples = eval_samples(ref)
    grid = eval_resolution(ref)
    found = twin_pairs.find_twins(ref)
    twins = twin_pairs.twin_conditions(found)
    # twins are the same seeds under another implementation: neither ranked nor sizing the seeds' spread
    kept = {k: v for k, v in samples.items() if k not in bad and k not in twins}
    per_source = source_table(values[~values["condition"].isin(bad)] if not values.empty else values)
    accuracy, gaps, variance = accuracy_table(ref), mode_gap_table(ref), variance_table(ref)
    flip, noise = flip_table(ref), test_noise_table(ref)
    comparisons = compared.comparisons(kept, grid)
    ranked = compared.summary(samples, comparisons, resolution=grid, excluded=bad, twins=twins)
    spread = compared.spread_of(kept, grid)
    return Tables(
        passes=pass_table(ref),
        accuracy=accuracy,
        variance=variance,
        test_noise=noise,
        mode_gaps=gaps,
        degenerate=flags,
        splits=split_table(ref),
        flips=flip,
        settings=settings_table(study),
        source_values=values,
        per_source=per_source,
        power=compared.power_table(spread, power_diffs(comparisons), unit="_point"),
        spread=spread,
        comparisons=comparisons,
        ranked=ranked,
        curves=curve_table(finished),
        failures=failure_table(study.runs),
        maps=map_data(ref),
        conditions=condition_table(accuracy, gaps, variance, flip, noise, ranked),
        twins=twin_pairs.twin_table(found, ref),
        twin_conditions=twins,
    )
