"""Step 1 of a metric report: runs seedvar did not train (any MLflow experiment, or a table of results),
read as one value of one metric per run, grouped into conditions by the params that define them.

Conditions are the distinct values of the `by` params; without them, every param that varies across the
finished runs except the seed params and those unique to every run. Replicates are a condition's finished
runs; runs that failed, still run or never logged the metric are counted and left out, with the reason.
A parent run whose children are in the experiment (a sweep launched from one script) is not a replicate:
its children are.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seedvar.errors import UserError
from seedvar.record.bulk import MetricRun, read_metric
from seedvar.record.schema import SEED_PARAMS
from seedvar.results import Status
from seedvar.stats.samples import Model, Samples

if TYPE_CHECKING:  # a CSV's report loads no MLflow store
    from seedvar.record.store import Store

MAX_HISTORY_RUNS = 2000  # a history is read for at most this many runs (a server does not say which have one)
RUN_COLUMNS = ["run_id", "run", "status", "condition", "seed", "value"]


@dataclass
class MetricRuns:
    """The runs of a metric report: one row per replicate (`table`), what was left out and why, how the
    conditions were chosen, and the metric's history where it was logged with steps."""

    source: str  # "experiment 'digits'" or "results.csv"
    metric: str
    by: list[str]
    chosen: str  # one sentence: which params define the conditions, and why those
    table: pd.DataFrame  # RUN_COLUMNS + the `by` columns: one row per replicate
    left_out: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["run", "status", "reason"]))
    histories: pd.DataFrame = field(default_factory=pd.DataFrame)  # condition, run, step, value
    lower_is_better: bool = False
    given_resolution: float | None = None  # `--resolution R`; None: inferred from the values' decimals
    bounds: tuple[float, float] | None = None  # `--bounds LO,HI`: the metric's possible range; None: unknown

    @property
    def resolution(self) -> float:
        """The metric's step, which floors each condition's std (tied seeds still have one): the user's, else
        10^-d for the most decimals d (up to 6) any value shows; 0 where the values are not rounded."""
        if self.given_resolution is not None:
            return float(self.given_resolution)
        return decimal_step(self.table["value"].to_numpy(float))

    @property
    def resolution_source(self) -> str:
        """Which resolution floors the stds, for the report to say."""
        how = "given" if self.given_resolution is not None else "inferred from the values' decimals"
        return f"resolution {self.resolution:g} ({how})"

    def cells(self) -> Samples:
        """The values in the one sample shape (seedvar.stats.samples): each run one model of one pass, in the
        mode named by the metric, on the metric's step."""
        step = self.resolution
        rows = zip(
            self.table["condition"], self.table["run"], self.table["run_id"], self.table["value"], strict=True
        )
        return Samples.of(
            [ValueRun(str(c), str(r), str(i), float(v), step, self.metric) for c, r, i, v in rows],
            bounds=self.bounds,
        )

    def bound(self, bounds: tuple[float, float] | None) -> None:
        """Take the metric's possible range (--bounds), refusing values outside it in one line."""
        if bounds is None:
            return
        lo, hi = bounds
        values = self.table["value"].to_numpy(float)
        outside = self.table[(values < lo) | (values > hi)]
        if len(outside):
            first = outside.iloc[0]
            raise UserError(
                f"--bounds {lo:g},{hi:g}: {len(outside)} value(s) of {self.metric} lie outside, e.g. "
                f"{first['value']:g} (run {first['run']}); give the metric's real range"
            )
        self.bounds = (float(lo), float(hi))


@dataclass(frozen=True)
class ValueRun:
    """One run's value of a metric, read as one pass of one trained model."""

    label: str
    run: str
    run_id: str
    value: float
    step: float
    mode: str

    @property
    def modes(self) -> list[str]:
        return [self.mode]

    def sample(self, mode: str) -> Model:
        return Model.of_passes(self.run, self.run_id, np.array([self.value]), step=self.step)


def decimal_step(values: np.ndarray, most: int = 6) -> float:
    """10^-d for the fewest decimals d that write every value exactly (a value logged as 0.9312 has step 1e-4);
    0.0 when more than `most` decimals are needed (the values are not rounded: no floor)."""
    finite = values[np.isfinite(values)]
    for d in range(most + 1):
        if np.allclose(finite, np.round(finite, d), rtol=0, atol=1e-9 * 10.0**-d):
            return 10.0**-d
    return 0.0


def is_seed_param(name: str, seed_params: Sequence[str] = SEED_PARAMS) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, pattern.lower()) for pattern in seed_params)


def condition_label(values: dict[str, str], by: list[str]) -> str:
    """`rf` for one param, `model=rf, depth=3` for several."""
    if len(by) == 1:
        return str(values[by[0]])
    return ", ".join(f"{k}={values[k]}" for k in by)


def choose_by(
    params: pd.DataFrame, by: Sequence[str] | None, seed_params: Sequence[str], what: str
) -> tuple[list[str], str]:
    """The params that define the conditions, and the sentence that says why: those given, else every
    param that varies across the finished runs except the seed params and those unique to every run."""
    known = list(params.columns)
    if by:
        missing = [b for b in by if b not in known]
        if missing:
            raise UserError(
                f"--by {','.join(missing)}: no such {what} in the finished runs; they have: "
                f"{', '.join(sorted(known)) or 'none'}"
            )
        return list(by), f"Conditions are the values of {', '.join(by)} (as asked with --by)."
    varying = [c for c in known if params[c].astype(str).nunique(dropna=False) > 1]
    seeds = [c for c in varying if is_seed_param(c, seed_params)]
    unique = [c for c in varying if c not in seeds and params[c].astype(str).nunique() == len(params) > 2]
    chosen = [c for c in varying if c not in seeds and c not in unique]
    why = []
    if seeds:
        why.append(f"seed {what}s left out: {', '.join(seeds)}")
    if unique:
        why.append(f"left out as different in every run: {', '.join(unique)}")
    tail = f" ({'; '.join(why)})" if why else ""
    if not chosen:
        return (
            [],
            f"No {what} other than the seed varies across the finished runs, so they are one condition{tail}.",
        )
    return (
        chosen,
        f"Conditions are the values of {', '.join(chosen)}, the {what}s that vary across the finished runs{tail}; choose others with --by.",
    )


def from_experiment(
    store: Store,
    experiment: str,
    metric: str,
    *,
    by: Sequence[str] | None = None,
    seed_params: Sequence[str] = SEED_PARAMS,
    lower_is_better: bool = False,
) -> MetricRuns:
    """The metric's runs of an MLflow experiment, read in bulk (record/bulk.py)."""
    exp_id = store.experiment_id(experiment, create=False)
    if exp_id is None:
        known = ", ".join(store.experiment_names()) or "none"
        raise UserError(f"no experiment named {experiment!r} in {store.uri} (known: {known})")
    read = read_metric(store, exp_id, metric)
    if metric not in read.metric_names:
        names = ", ".join(sorted(read.metric_names)) or "none"
        raise UserError(
            f"--metric {metric}: no run of experiment {experiment!r} logged it; its runs log: {names}"
        )
    parents = {r.parent_id for r in read.runs if r.parent_id}
    runs = [r for r in read.runs if r.run_id not in parents]  # a parent of runs here is not a replicate
    source = f"experiment {experiment!r}"
    out = _assemble(runs, metric, by, seed_params, source, "param", lower_is_better)
    out.histories = _histories(store, out, runs)
    return out


def _assemble(
    runs: list[MetricRun],
    metric: str,
    by: Sequence[str] | None,
    seed_params: Sequence[str],
    source: str,
    what: str,
    lower_is_better: bool,
) -> MetricRuns:
    left = []
    kept = []
    for r in runs:
        if r.status != Status.FINISHED:
            left.append({"run": r.name, "status": r.status, "reason": f"{r.status.lower()}, not finished"})
        elif r.value is None:
            left.append({"run": r.name, "status": r.status, "reason": f"never logged {metric}"})
        elif not math.isfinite(r.value):
            left.append({"run": r.name, "status": r.status, "reason": f"{metric} is {r.value}"})
        else:
            kept.append(r)
    if not kept:
        raise UserError(
            f"{source} has no finished run with a value of {metric} ({len(runs)} runs, {len(left)} left out): "
            "nothing to report"
        )
    params = pd.DataFrame([r.params for r in kept]).fillna("")
    chosen_by, chosen = choose_by(params, by, seed_params, what)
    seed_cols = [c for c in params.columns if is_seed_param(c, seed_params)]
    table = pd.DataFrame(
        {
            "run_id": [r.run_id for r in kept],
            "run": [r.name for r in kept],
            "status": [r.status for r in kept],
            "condition": [
                condition_label(p, chosen_by) if chosen_by else metric for p in params.to_dict("records")
            ],
            "seed": params[seed_cols[0]].to_numpy() if seed_cols else [""] * len(kept),
            "value": [r.value for r in kept],
            "step": [r.step for r in kept],
        }
    )
    for col in chosen_by:
        table[col] = params[col].to_numpy()
    return MetricRuns(
        source,
        metric,
        chosen_by,
        chosen,
        table,
        pd.DataFrame(left, columns=["run", "status", "reason"]),
        lower_is_better=lower_is_better,
    )


def _histories(store: Store, runs: MetricRuns, read: list[MetricRun]) -> pd.DataFrame:
    """The metric's history per run where it was logged at more than one step (bands over steps)."""
    steps = runs.table["step"]
    if not (steps > 0).any() and not ((steps < 0).any() and len(steps) <= MAX_HISTORY_RUNS):
        return pd.DataFrame()
    ids = list(runs.table["run_id"][:MAX_HISTORY_RUNS])
    found = store.metric_histories(ids, runs.metric)
    cond = dict(zip(runs.table["run_id"], runs.table["condition"], strict=True))
    name = dict(zip(runs.table["run_id"], runs.table["run"], strict=True))
    rows = [
        {"condition": cond[r], "run": name[r], "step": step, "value": value}
        for r, history in found.items()
        if len(history) > 1
        for step, value in history
    ]
    return pd.DataFrame(rows, columns=["condition", "run", "step", "value"])


def from_frame(
    frame: pd.DataFrame,
    metric: str,
    *,
    by: Sequence[str] | None = None,
    seed_params: Sequence[str] = SEED_PARAMS,
    source: str = "the table",
    lower_is_better: bool = False,
) -> MetricRuns:
    """One row per run, with a column for the metric, the conditions' columns and a seed column (a W&B,
    TensorBoard or spreadsheet export). A `status` column, where there is one, leaves out runs that did
    not finish; a `run` column names the runs."""
    if metric not in frame.columns:
        raise UserError(
            f"--metric {metric}: {source} has no such column; its columns: {', '.join(map(str, frame.columns))}"
        )
    if frame.empty:
        raise UserError(f"{source} has a header and no rows: export the runs' rows too, one row per run")
    values = pd.to_numeric(frame[metric], errors="coerce")
    if frame[metric].isna().all():
        raise UserError(
            f"--metric {metric}: its column in {source} is empty: pick a column that holds the metric"
        )
    text = frame[metric].notna() & values.isna()
    if text.all():
        raise UserError(
            f"--metric {metric}: its values in {source} are not numbers (e.g. {frame[metric].iloc[0]!r})"
        )
    names = (
        frame["run"].astype(str)
        if "run" in frame.columns
        else pd.Series([f"row {i + 2}" for i in range(len(frame))])
    )
    status = (
        frame["status"].astype(str).str.upper()
        if "status" in frame.columns
        else pd.Series([Status.FINISHED] * len(frame))
    )
    params = frame.drop(columns=[c for c in (metric, "run", "status") if c in frame.columns]).astype(str)
    runs = [
        MetricRun(
            f"{i}",
            names.iloc[i],
            status.iloc[i],
            value=None if pd.isna(values.iloc[i]) else float(values.iloc[i]),
            params={k: v for k, v in params.iloc[i].items() if v not in ("", "nan")},
        )
        for i in range(len(frame))
    ]
    return _assemble(runs, metric, by, seed_params, source, "column", lower_is_better)


def from_csv(path: str | Path, metric: str, **kw: object) -> MetricRuns:
    """`from_frame` of a CSV file (one row per run)."""
    p = Path(path)
    try:
        frame = pd.read_csv(p)
    except FileNotFoundError:
        raise UserError(f"--csv {p}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"--csv {p}: not a readable CSV table ({str(exc).splitlines()[0][:120]})") from None
    return from_frame(frame, metric, source=p.name, **kw)


def runs_frame(runs: MetricRuns) -> pd.DataFrame:
    """The one-row-per-run DataFrame the API returns: run, status, condition, its params, seed, value."""
    return runs.table[[*RUN_COLUMNS, *runs.by]].rename(columns={"value": runs.metric})
