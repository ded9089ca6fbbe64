"""What a sweep ends with, from the runs' logged summaries (no predictions needed): the table per condition
and mode, and the spread across seeds that the sweep's parent run carries as metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd

from seedvar.analysis.spread import SeedSpread, pool
from seedvar.record.reader import StoredRun
from seedvar.record.schema import condition_key
from seedvar.results import MODES, PassSummary

SUMMARY_COLUMNS = ["model", "mode", "runs", "passes", "mean", "std", "min", "max"]


def by_condition(
    runs: list[StoredRun], modes: Sequence[str] = MODES
) -> list[tuple[StoredRun, str, list[PassSummary]]]:
    """Each finished run's per-mode summary, grouped as (first run of its condition, mode, summaries):
    conditions in run order, modes in the given order."""
    firsts: dict[str, StoredRun] = {}
    found: dict[tuple[str, str], list[PassSummary]] = {}
    for run in runs:
        firsts.setdefault(run.condition, run)
        for mode, summary in run.summaries.items():
            found.setdefault((run.condition, mode), []).append(summary)
    return [
        (first, mode, found[cond, mode])
        for cond, first in firsts.items()
        for mode in modes
        if (cond, mode) in found
    ]


def sweep_table(runs: list[StoredRun], modes: Sequence[str] = MODES) -> pd.DataFrame:
    """Per condition and mode: runs, passes, mean, std, min, max accuracy (%) over every pass of every run."""
    rows = [
        {"model": first.condition, "mode": mode, **asdict(pool(summaries))}
        for first, mode, summaries in by_condition(runs, modes)
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def seed_spreads(
    runs: list[StoredRun], modes: Sequence[str] = MODES
) -> dict[tuple[str, str], dict[str, float | int | None]]:
    """Per (condition key, mode): the spread across seeds of the per-run mean accuracy (fractions), as the
    sweep's parent run logs it."""
    return {
        (condition_key(first.model, first.deterministic, first.variant), mode): asdict(
            SeedSpread.of([s.acc_mean for s in summaries])
        )
        for first, mode, summaries in by_condition(runs, modes)
    }


def condition_spreads(
    runs: list[StoredRun], modes: Sequence[str] = MODES
) -> tuple[dict[str, dict[str, dict[str, float | int | None]]], dict[str, list[StoredRun]]]:
    """Per condition key: the spread across seeds per mode (of the runs with every source varied, where a
    study varies sources one at a time) for the condition's own run, and every run of the condition."""
    members: dict[str, list[StoredRun]] = {}
    for run in runs:
        members.setdefault(condition_key(run.model, run.deterministic, run.variant), []).append(run)
    spreads = {}
    for key, group in members.items():
        reference = [r for r in group if r.varied == "all"] or group
        spreads[key] = {
            mode: asdict(SeedSpread.of([s.acc_mean for s in summaries]))
            for _, mode, summaries in by_condition(reference, modes)
        }
    return spreads, members
