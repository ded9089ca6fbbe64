"""Step 2 of the report: the loaded runs become tables (pandas DataFrames), one function per table.

Accuracies are in percentage points. Every function takes plain data (LoadedRun objects) and returns a
DataFrame, so each can be tested on synthetic runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.analysis import compare, components, flips, spread
from study.analysis.load import LoadedRun, StudyRuns
from study.record.schema import PARAM_REPLICATE, PARAM_SEED_PREFIX, STOCHASTIC_MODES, PooledSummary


def groups(finished: list[LoadedRun]) -> dict[tuple[str, str], list[LoadedRun]]:
    """Runs by (condition, mode), in a stable order."""
    out: dict[tuple[str, str], list[LoadedRun]] = {}
    for r in finished:
        for mode in r.modes:
            out.setdefault((r.condition, mode), []).append(r)
    return out


def conditions(finished: list[LoadedRun]) -> list[str]:
    """Conditions (model, determinism) in the order of the runs."""
    return list(dict.fromkeys(r.condition for r in finished))


def pass_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """One row per test pass of every trained model: what the accuracy figure draws."""
    rows = [
        {"condition": r.condition, "model": r.model, "run": r.name, "mode": mode, "pass": p, "accuracy": a}
        for r in finished
        for mode in r.modes
        for p, a in enumerate(r.accuracy(mode))
    ]
    return pd.DataFrame(rows)


def accuracy_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Per condition and mode: the pooled summary over every pass, the seed-to-seed std and its CI."""
    rows = []
    for (cond, mode), group in groups(finished).items():
        pooled = PooledSummary.of_passes([r.accuracy(mode) for r in group])
        means = np.array([r.accuracy(mode).mean() for r in group])
        s = spread.spread(means)
        rows.append(
            {
                "condition": cond,
                "mode": mode,
                "runs": pooled.runs,
                "passes": pooled.passes,
                "mean": pooled.mean,
                "std": pooled.std,
                "seed_std": s.std if len(means) > 1 else 0.0,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "min": pooled.min,
                "max": pooled.max,
            }
        )
    return pd.DataFrame(rows)


def variance_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Between-model and within-model variance per condition and mode (needs 2+ models, 2+ passes)."""
    rows = []
    for (cond, mode), group in groups(finished).items():
        if len(group) < 2:
            continue
        values = np.concatenate([r.accuracy(mode) for r in group])
        ids = np.concatenate([np.full(len(r.accuracy(mode)), i) for i, r in enumerate(group)])
        if len(values) <= len(group):  # one pass per model: within and between cannot be told apart
            continue
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
                "share_within": 100 * v.share_within,
                "share_within_ci_low": 100 * v.share_within_ci[0],
                "share_within_ci_high": 100 * v.share_within_ci[1],
                "share_between": 100 * v.share_between,
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
                "flip_rate": 100 * float(np.mean(rates)) if rates else float("nan"),
                "churn_between_models": (
                    100 * flips.mean_churn([(r.preds.ids, r.preds.passes["eval"][0]) for r in group])
                    if mode == "eval" and len(group) > 1
                    else float("nan")
                ),
            }
        )
    return pd.DataFrame(rows)


def settings_table(study: StudyRuns) -> pd.DataFrame:
    """Parameters shared by every finished run (plus how many runs vary what)."""
    finished = study.finished
    keys = sorted(set().union(*(r.params for r in finished)))
    rows = [
        {"setting": "experiment", "value": study.experiment},
        {"setting": "sweeps", "value": str(study.sweeps)},
    ]
    for key in keys:
        values = sorted({r.params.get(key, "") for r in finished})
        if key.startswith(PARAM_SEED_PREFIX) or key == PARAM_REPLICATE:
            rows.append({"setting": key, "value": f"{len(values)} distinct values"})
        else:
            rows.append({"setting": key, "value": ", ".join(values)})
    seconds = [r.metrics.get("time.total_seconds", 0.0) for r in finished]
    rows.append({"setting": "finished runs", "value": str(len(finished))})
    rows.append({"setting": "mean seconds per run", "value": f"{np.mean(seconds):.1f}"})
    return pd.DataFrame(rows)


def source_values(finished: list[LoadedRun]) -> pd.DataFrame:
    """Eval accuracy of each trained model of a one-source-at-a-time study, by the source it varied."""
    varied = [r for r in finished if r.varied != "all" and "eval" in r.modes]
    return pd.DataFrame(
        [
            {
                "condition": r.condition,
                "source": r.varied,
                "replicate": r.replicate,
                "accuracy": r.accuracy("eval").mean(),
            }
            for r in varied
        ],
        columns=["condition", "source", "replicate", "accuracy"],
    )


def source_table(values: pd.DataFrame) -> pd.DataFrame:
    """Spread of eval accuracy per condition and source (empty when no source was varied alone)."""
    tables = []
    for cond, g in values.groupby("condition", sort=False):
        t = spread.per_source_spread(g["accuracy"].to_numpy(), g["source"].to_numpy())
        t.insert(0, "condition", cond)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def eval_samples(finished: list[LoadedRun]) -> dict[str, np.ndarray]:
    """Mean eval accuracy of each trained model, by condition (conditions with 2+ models only)."""
    samples: dict[str, list[float]] = {}
    for r in finished:
        if "eval" in r.modes:
            samples.setdefault(r.condition, []).append(r.accuracy("eval").mean())
    return {k: np.array(v) for k, v in samples.items() if len(v) >= 2}


def power_table(samples: dict[str, np.ndarray]) -> pd.DataFrame:
    """Replicates per model needed to detect 1 and 0.5 points at each condition's seed-to-seed std."""
    rows = []
    for cond, vals in samples.items():
        sd = float(np.std(vals, ddof=1))
        rows.append(
            {
                "condition": cond,
                "seed_std": sd,
                "replicates_for_1_point": compare.replicates_needed(sd, 1.0),
                "replicates_for_0.5_point": compare.replicates_needed(sd, 0.5),
            }
        )
    return pd.DataFrame(rows)


def comparison_matrices(table: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Difference of means (row minus column) and Holm-adjusted Welch p-values, as square tables."""
    diff = pd.DataFrame(0.0, index=names, columns=names)
    pv = pd.DataFrame(np.nan, index=names, columns=names)
    for _, row in table.iterrows():
        diff.loc[row["a"], row["b"]], diff.loc[row["b"], row["a"]] = row["diff"], -row["diff"]
        pv.loc[row["a"], row["b"]] = pv.loc[row["b"], row["a"]] = row["welch_p_holm"]
    return diff, pv


def spread_test_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Brown-Forsythe: is a stochastic mode's spread over passes different from eval's spread over seeds?"""
    rows = []
    for cond in conditions(finished):
        group = [r for r in finished if r.condition == cond]
        ev = np.array([r.accuracy("eval").mean() for r in group if "eval" in r.modes])
        for mode in STOCHASTIC_MODES:
            tr = np.concatenate([r.accuracy(mode) for r in group if mode in r.modes] or [np.array([])])
            if len(ev) >= 2 and len(tr) >= 2:
                stat, p = compare.spread_test(ev, tr)
                rows.append(
                    {
                        "condition": cond,
                        "eval_std": ev.std(ddof=1),
                        f"{mode}_std": tr.std(ddof=1),
                        "mode": mode,
                        "brown_forsythe": stat,
                        "p": p,
                    }
                )
    return pd.DataFrame(rows)


def curve_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Training loss and accuracy (%) per epoch of every run: the curves' bands."""
    rows = [
        {
            "condition": r.condition,
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


def failure_table(runs: list[LoadedRun]) -> pd.DataFrame:
    """Runs that did not finish, with the reason each recorded."""
    return pd.DataFrame(
        [
            {
                "run": r.name,
                "status": r.status,
                "reason": r.failure or "(no reason recorded)",
                "run_id": r.run_id,
            }
            for r in runs
            if r.status != "FINISHED"
        ],
        columns=["run", "status", "reason", "run_id"],
    )


@dataclass
class MapData:
    """One hyperspectral model's test pixels: eval-mode map and two stochastic passes."""

    run: str
    mode: str
    gt: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    eval_pred: np.ndarray
    pass_a: np.ndarray
    pass_b: np.ndarray

    @property
    def flipped(self) -> int:
        return int((self.pass_a != self.pass_b).sum())


def map_data(finished: list[LoadedRun]) -> MapData | None:
    """The first hyperspectral run with an eval pass and two stochastic passes, if any."""
    for r in finished:
        p = r.preds
        stochastic = [m for m in STOCHASTIC_MODES if m in p.passes]
        if p.gt is None or p.coords is None or "eval" not in p.passes or not stochastic:
            continue
        mode = "train" if "train" in p.passes else "mc_dropout"
        if len(p.passes[mode]) < 2:
            continue
        return MapData(r.name, mode, p.gt, p.coords, p.labels, p.passes["eval"][0], *p.passes[mode][:2])
    return None


@dataclass
class Tables:
    """Every table of a report, computed once from the loaded runs."""

    passes: pd.DataFrame
    accuracy: pd.DataFrame
    variance: pd.DataFrame
    flips: pd.DataFrame
    settings: pd.DataFrame
    source_values: pd.DataFrame
    per_source: pd.DataFrame
    power: pd.DataFrame
    comparisons: pd.DataFrame
    spread_tests: pd.DataFrame
    curves: pd.DataFrame
    failures: pd.DataFrame
    maps: MapData | None


def build(study: StudyRuns) -> Tables:
    """All tables of the report."""
    finished = study.finished
    values = source_values(finished)
    samples = eval_samples(finished)
    return Tables(
        passes=pass_table(finished),
        accuracy=accuracy_table(finished),
        variance=variance_table(finished),
        flips=flip_table(finished),
        settings=settings_table(study),
        source_values=values,
        per_source=source_table(values),
        power=power_table(samples),
        comparisons=compare.compare_all(samples) if len(samples) >= 2 else pd.DataFrame(),
        spread_tests=spread_test_table(finished),
        curves=curve_table(finished),
        failures=failure_table(study.runs),
        maps=map_data(finished),
    )
