"""The tables that describe a study's setting rather than its numbers: the settings every run shares, how
the scene's pixels were split and how much the test windows leak, and the runs that did not finish."""

from __future__ import annotations

import numpy as np
import pandas as pd

from seedvar.analysis.load import LoadedRun, StudyRuns
from seedvar.record.schema import PARAM_DATA_PREFIX, PARAM_REPLICATE, PARAM_SEED_PREFIX
from seedvar.results import Status, points


def conditions(finished: list[LoadedRun]) -> list[str]:
    """Conditions (model, determinism, dataset variant) in the order of the runs."""
    return list(dict.fromkeys(r.label for r in finished))


def split_table(finished: list[LoadedRun]) -> pd.DataFrame:
    """Per condition of a scene: how train and test pixels were split and how much the test windows leak.

    Empty for datasets that log no leakage (images).
    """
    key = PARAM_DATA_PREFIX
    rows = []
    for cond in conditions(finished):
        group = [r for r in finished if r.label == cond and f"{key}leakage" in r.params]
        if not group:
            continue

        def nums(name: str, group: list[LoadedRun] = group) -> np.ndarray:
            return np.array([float(r.params.get(f"{key}{name}", "nan")) for r in group])

        one_sided = sorted(
            {
                c
                for r in group
                for c in r.params.get(f"{key}one_sided_classes", "none").split(", ")
                if c and c != "none"
            }
        )
        leak = nums("leakage")
        rows.append(
            {
                "condition": cond,
                "split": ", ".join(sorted({r.params.get(f"{key}split", "random") for r in group})),
                "runs": len(group),
                "window": group[0].params.get(f"{key}window", ""),
                "block": group[0].params.get(f"{key}block", ""),
                "train_pixels": nums("n_train").mean(),
                "test_pixels": nums("n_test").mean(),
                "gap_pixels": np.nanmean(nums("gap_pixels"))
                if f"{key}gap_pixels" in group[0].params
                else 0.0,
                "leakage_mean": points(leak.mean()),
                "leakage_min": points(leak.min()),
                "leakage_max": points(leak.max()),
                "one_sided_classes": ", ".join(one_sided) or "none",
            }
        )
    return pd.DataFrame(rows)


def settings_table(study: StudyRuns) -> pd.DataFrame:
    """Parameters shared by every finished run; per-run values (seeds, fingerprints) as a count or range."""
    finished = study.finished
    keys = sorted(set().union(*(r.params for r in finished)))
    rows = [
        {"setting": "experiment", "value": study.experiment},
        {"setting": "sweeps", "value": str(study.sweeps)},
    ]
    for key in keys:
        values = sorted({r.params.get(key, "") for r in finished})
        numbers = pd.to_numeric(pd.Series(values), errors="coerce")
        if (
            key.startswith(PARAM_SEED_PREFIX)
            or key == PARAM_REPLICATE
            or len(values) > 3
            and numbers.isna().all()
        ):
            rows.append({"setting": key, "value": f"{len(values)} distinct values"})
        elif len(values) > 3 and numbers.notna().all():  # per-run facts (pixels, leakage): their range
            rows.append(
                {
                    "setting": key,
                    "value": f"{len(values)} distinct values, {numbers.min():.6g} to {numbers.max():.6g}",
                }
            )
        else:
            rows.append({"setting": key, "value": ", ".join(values)})
    seconds = [r.metrics.get("time.total_seconds", 0.0) for r in finished]
    rows.append({"setting": "finished runs", "value": str(len(finished))})
    rows.append({"setting": "mean seconds per run", "value": f"{np.mean(seconds):.1f}"})
    return pd.DataFrame(rows)


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
            if r.status != Status.FINISHED
        ],
        columns=["run", "status", "reason", "run_id"],
    )
