"""A sweep's finish: its finished runs read back (their logged summaries; no predictions needed), each
condition's spread across seeds recorded on its condition run, and the table per condition and mode that
the sweep ends with."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from seedvar.record.condition_runs import record_conditions
from seedvar.record.reader import StoredRun, child_runs, latest_finished, reference_runs
from seedvar.record.store import Store
from seedvar.results import MODES, fraction
from seedvar.stats.samples import Cell, Samples
from seedvar.sweeper.sweep_result import SweepResult

SUMMARY_COLUMNS = ["model", "mode", "runs", "passes", "mean", "ci_low", "ci_high", "std", "min", "max"]


def seed_spread(cell: Cell) -> dict[str, float | int | None]:
    """The spread across seeds of the per-run mean accuracy: mean, std and the 95% t-interval of the mean
    (seedvar.stats.interval, floored at the runs' resolution), in fractions, as a condition run logs it."""
    m = cell.interval()
    finite = m.n > 1
    return {
        "acc_mean": fraction(m.mean),
        "acc_std": fraction(m.std) if finite else None,
        "acc_ci_low": fraction(m.ci_low) if finite else None,
        "acc_ci_high": fraction(m.ci_high) if finite else None,
        "runs": m.n,
    }


def sweep_table(runs: list[StoredRun], modes: Sequence[str] = MODES) -> pd.DataFrame:
    """Per condition and mode: runs, passes, mean accuracy (%) over every pass of every run with the 95%
    interval of the mean over its trained models (its reference runs, as in the report), the std, min and
    max over every pass."""
    every, reference = Samples.of(runs, modes), Samples.of(reference_runs(runs), modes)
    rows = []
    for key, cell in every.items():
        pooled = cell.pooled()
        spread = reference[key].interval() if key in reference else None
        low, high = (spread.ci_low, spread.ci_high) if spread is not None and spread.n > 1 else (None, None)
        rows.append(
            {
                "model": cell.condition,
                "mode": cell.mode,
                "runs": pooled.runs,
                "passes": pooled.passes,
                "mean": pooled.mean,
                "ci_low": low,
                "ci_high": high,
                "std": pooled.std,
                "min": pooled.min,
                "max": pooled.max,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def condition_spreads(
    runs: list[StoredRun], modes: Sequence[str] = MODES
) -> tuple[dict[str, dict[str, dict[str, float | int | None]]], dict[str, list[StoredRun]]]:
    """Per condition key: the spread across seeds per mode of its reference runs (fractions, as its
    condition run logs them), and every run of the condition."""
    members: dict[str, list[StoredRun]] = {}
    for run in runs:
        members.setdefault(run.condition.key, []).append(run)
    spreads: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for cell in Samples.of(reference_runs(runs), modes).values():
        spreads.setdefault(cell.runs[0].condition.key, {})[cell.mode] = seed_spread(cell)
    return spreads, members


def finish(result: SweepResult) -> None:
    """Read the plan's finished runs back, record each condition's spread across seeds on its condition run
    (every finished run of the study counts, also of earlier sweeps and plans) and fill `result.summary`."""
    if result.experiment_id is None:
        return
    store = Store(result.tracking_uri, create=False)
    order = {c.config_hash: i for i, c in enumerate(result.configs)}
    latest = latest_finished(child_runs(store, result.experiment_id))
    finished = sorted((r for h, r in latest.items() if h in order), key=lambda r: order[r.config_hash])
    modes = list(dict.fromkeys(m for c in result.configs for m in c.test.modes))
    if latest:
        record_conditions(store, result.experiment_id, *condition_spreads(list(latest.values()), modes))
    result.summary = sweep_table(finished, modes)
    target = result.study.target
    if target.active and not result.summary.empty:
        result.summary["target"] = [
            target_mark(result, row["model"], int(row["runs"])) if row["mode"] == target.mode else ""
            for _, row in result.summary.iterrows()
        ]


def target_mark(result: SweepResult, condition: str, runs: int) -> str:
    """How a condition of a two-stage sweep stands: its target reached, capped, or not decided yet."""
    target, d = result.study.target, result.decisions.get(condition)
    if d is None:
        return result.undecided.get(condition, "not decided")
    if runs < d.n:
        return f"short: {runs} of n={d.n} finished"
    half = f", +-{d.half_width:.2f}" if target.ci else ""
    if d.capped:
        return f"capped at n={d.n}{half}" + (f" > {target.ci:g}" if target.ci else "")
    return f"reached: n={d.n}{half}" + (f" <= {target.ci:g}" if target.ci else "")
