"""What a sweep ends with, from the runs' logged summaries (no predictions needed): the table per condition
and mode, and each condition's spread across seeds that its condition run carries as metrics."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from seedvar.record.reader import StoredRun, reference_runs
from seedvar.results import MODES, PassSummary
from seedvar.stats.interval import mean_interval, pool, resolution_of

SUMMARY_COLUMNS = ["model", "mode", "runs", "passes", "mean", "ci_low", "ci_high", "std", "min", "max"]


def by_condition(
    runs: list[StoredRun], modes: Sequence[str] = MODES
) -> list[tuple[StoredRun, str, list[tuple[StoredRun, PassSummary]]]]:
    """Each finished run's per-mode summary, grouped as (first run of its condition, mode, [(run, summary)]):
    conditions in run order, modes in the given order."""
    firsts: dict[str, StoredRun] = {}
    found: dict[tuple[str, str], list[tuple[StoredRun, PassSummary]]] = {}
    for run in runs:
        key = run.condition.key
        firsts.setdefault(key, run)
        for mode, summary in run.summaries.items():
            found.setdefault((key, mode), []).append((run, summary))
    return [
        (first, mode, found[key, mode])
        for key, first in firsts.items()
        for mode in modes
        if (key, mode) in found
    ]


def seed_spread(
    members: list[tuple[StoredRun, PassSummary]], scale: float = 1.0
) -> dict[str, float | int | None]:
    """The spread across seeds of the per-run mean accuracy: mean, std and the 95% t-interval of the mean
    (seedvar.stats.interval, floored at the runs' resolution), in fractions (`scale` 1) or points (100)."""
    m = mean_interval(
        [scale * summary.acc_mean for _, summary in members],
        resolution=resolution_of([run.test_samples or 0 for run, _ in members], scale),
        bounds=(0.0, scale),
    )
    finite = m.n > 1
    return {
        "acc_mean": m.mean,
        "acc_std": m.std if finite else None,
        "acc_ci_low": m.ci_low if finite else None,
        "acc_ci_high": m.ci_high if finite else None,
        "runs": m.n,
    }


def sweep_table(runs: list[StoredRun], modes: Sequence[str] = MODES) -> pd.DataFrame:
    """Per condition and mode: runs, passes, mean accuracy (%) over every pass of every run with the 95%
    interval of the mean over trained models, the std, min and max over every pass."""
    rows = []
    for first, mode, members in by_condition(runs, modes):
        summaries = [summary for _, summary in members]
        pooled = pool(
            [s.passes for s in summaries],
            [100 * s.acc_mean for s in summaries],
            [100 * s.acc_std for s in summaries],
            [100 * s.acc_min for s in summaries],
            [100 * s.acc_max for s in summaries],
        )
        spread = seed_spread(members, scale=100.0)
        rows.append(
            {
                "model": first.condition.name,
                "mode": mode,
                "runs": pooled.runs,
                "passes": pooled.passes,
                "mean": pooled.mean,
                "ci_low": spread["acc_ci_low"],
                "ci_high": spread["acc_ci_high"],
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
    for first, mode, group in by_condition(reference_runs(runs), modes):
        spreads.setdefault(first.condition.key, {})[mode] = seed_spread(group)
    return spreads, members
