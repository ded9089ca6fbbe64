"""Step 2 of a study's report: its samples become tables (pandas DataFrames), one function per table, each
declared with its section and figure in analysis.registry.

Accuracies are in percentage points. Every function takes plain data (the one sample shape,
seedvar.stats.samples, or LoadedRun objects) and returns a DataFrame, so each can be tested on synthetic runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seedvar.analysis.load import LoadedRun
from seedvar.results import EVAL, MODES, REFERENCE, TRAIN, points
from seedvar.stats import components, degenerate, flips, modes, sources, testnoise
from seedvar.stats.samples import Samples


def samples_of(ref: list[LoadedRun]) -> Samples:
    """The reference runs read once into the one sample shape: per (condition, mode), every pass of every
    trained model, recomputed from its predictions (in points)."""
    return Samples.of(ref, MODES)


def pass_table(samples: Samples) -> pd.DataFrame:
    """One row per test pass of every trained model, run by run as they were read (each run's modes in
    turn): what the accuracy figure draws, whose jitter follows the row order."""
    keyed = []
    for c, cond in enumerate(samples.conditions()):
        for j, mode in enumerate(MODES):
            cell = samples.get((cond, mode))
            for i, (m, run) in enumerate(zip(cell.models, cell.runs, strict=True) if cell else []):
                keyed += [
                    (
                        (c, i, j, p),
                        {
                            "condition": cond,
                            "model": run.model,
                            "run": m.run,
                            "mode": mode,
                            "pass": p,
                            "accuracy": a,
                        },
                    )
                    for p, a in enumerate(m.passes)
                ]
    return pd.DataFrame([row for _, row in sorted(keyed, key=lambda kr: kr[0])])


def accuracy_table(samples: Samples) -> pd.DataFrame:
    """Per condition and mode: the pooled summary over every pass, the seed-to-seed std and the 95%
    t-interval of the mean over trained models (seedvar.stats.interval)."""
    rows = []
    for cell in samples.values():
        pooled, s = cell.pooled(), cell.interval()
        rows.append(
            {
                "condition": cell.condition,
                "mode": cell.mode,
                "runs": pooled.runs,
                "passes": pooled.passes,
                "mean": pooled.mean,
                "std": pooled.std,
                "seed_std": s.std if s.n > 1 else 0.0,
                "resolution": cell.resolution,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "min": pooled.min,
                "max": pooled.max,
            }
        )
    return pd.DataFrame(rows)


def variance_table(samples: Samples) -> pd.DataFrame:
    """Between-model and within-model variance per condition and mode (needs 2+ models, 2+ passes), on a
    balanced design: each model's first passes, as many as the model with the fewest has."""
    rows = []
    for cell in samples.values():
        per_model = components.balanced(cell.per_pass())
        if len(per_model) < 2 or len(per_model[0]) < 2:  # one pass per model: within and between are one
            continue
        values = np.concatenate(per_model)
        ids = np.repeat(np.arange(len(per_model)), len(per_model[0]))
        v = components.variance_components(values, ids)
        rows.append(
            {
                "condition": cell.condition,
                "mode": cell.mode,
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


def flip_table(samples: Samples) -> pd.DataFrame:
    """Flip rate between passes of one model (%) per condition and mode; churn between models in eval."""
    rows = []
    for cell in samples.values():
        mode, group = cell.mode, cell.runs
        rates = [flips.flip_rate(r.preds.passes[mode]) for r in group if len(r.preds.passes[mode]) > 1]
        rows.append(
            {
                "condition": cell.condition,
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


def test_noise_table(samples: Samples) -> pd.DataFrame:
    """Per condition: the eval-mode seed-to-seed variance split into the finite test set and the models.

    From each model's first eval pass, matched by test sample id (conditions with 3+ models, the fewest
    its intervals' coverage is checked at). Variances in points², stds in points, shares in %.
    """
    rows = []
    for cond, cell in samples.of_mode(EVAL).items():
        group = cell.runs
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


def mode_gap_table(samples: Samples) -> pd.DataFrame:
    """Per condition with all three modes: train - eval split into BatchNorm and dropout parts (points),
    over the trained models tested in all three."""
    tables = []
    for cond in samples.conditions():
        cells = [samples.get((cond, m)) for m in MODES]
        if any(c is None for c in cells):
            continue
        both = set.intersection(*({m.run_id for m in c.models} for c in cells if c is not None))
        acc, steps = {}, []
        for c in cells:
            if c is not None:
                kept = [m for m in c.models if m.run_id in both]
                acc[c.mode] = np.array([m.mean for m in kept])
                steps = [m.step for m in kept]
        t = modes.mode_gaps(acc, resolution=max(steps, default=0.0))
        t.insert(0, "condition", cond)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def degenerate_table(samples: Samples) -> pd.DataFrame:
    """Per condition and mode: models at chance level, predicting one class, zero spread across seeds."""
    rows = []
    for cell in samples.values():
        f = degenerate.flags([(r.preds.passes[cell.mode], r.preds.labels) for r in cell.runs])
        rows.append(
            {"condition": cell.condition, "mode": cell.mode, **f.as_dict(), "chance": points(f.chance)}
        )
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
    columns = ["condition", "source", "replicate", "accuracy"]
    if all(r.varied == REFERENCE for r in finished):
        return pd.DataFrame(columns=columns)
    rows = [
        {"condition": cell.condition, "source": r.varied, "replicate": r.replicate, "accuracy": m.mean}
        for cell in Samples.of(finished, [EVAL]).values()
        for m, r in zip(cell.models, cell.runs, strict=True)
    ]
    return pd.DataFrame(rows, columns=columns)


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
