"""The Python API: what the `seedvar` command does, as functions for notebooks and scripts.

    import seedvar
    result = seedvar.sweep("quick", replicates=3, epochs=5)   # a ready study's name, or a spec's path
    df = seedvar.runs("quick")                                 # one row per trained model and test mode
    rep = seedvar.report("quick", out="reports/quick")         # rep.tables["accuracy"] is a DataFrame
    check = seedvar.reproduce(run_id)                          # retrain one logged run: bit for bit?

The CLI calls these same functions.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

if TYPE_CHECKING:
    from seedvar.plan import Study
    from seedvar.plan.ready import ReadyStudy
    from seedvar.stats.samples import Samples
    from seedvar.sweeper import SweepResult
    from seedvar.sweeper.reproduce import Reproduction


def sweep(
    spec: str | Path | Mapping[str, Any] | Study,
    *,
    tracking_uri: str | None = None,
    data_root: str | Path | None = None,
    dry_run: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
    **overrides: Any,
) -> SweepResult:
    """Train and test what is missing of a study, print the summary table, return the `SweepResult`
    (its `summary` is that table as a DataFrame, its `outcomes` one per run it tried).

    `spec` is a path, a ready study's name (`seedvar.ready_studies()`), a dict shaped like a spec's TOML, or a
    parsed `Study`. Overrides (the sweep's options, seedvar.plan.options: `seedvar sweep --help` says what
    each does): models, replicates, epochs, deterministic (True, False or "both"), device, download,
    target_ci / target_diff / target_mode / target_std / max_replicates (a two-stage sweep: the replicates
    are the pilot), the execution settings executor, jobs, runs_per_gpu, ray_address, checkpoint_every,
    claim_timeout, retry_for, and any spec field by its dotted name (`**{"train.lr": 0.01}`).
    """
    from seedvar.engine.determinism import prepare_cuda_env
    from seedvar.errors import UserError
    from seedvar.plan.execution import Execution
    from seedvar.plan.options import EXECUTION_KEYWORDS, SPEC_KEYWORDS
    from seedvar.sweeper import run_sweep

    prepare_cuda_env()  # before anything can start CUDA
    out = out or sys.stdout
    spec_overrides: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in SPEC_KEYWORDS:
            if value is not None:
                spec_overrides[SPEC_KEYWORDS[key]] = list(value) if key == "models" else value
        elif key in EXECUTION_KEYWORDS:
            flags[key] = value
        elif "." in key:
            spec_overrides[key] = value
        else:
            known = ", ".join([*SPEC_KEYWORDS, *EXECUTION_KEYWORDS])
            raise UserError(
                f"unknown sweep setting {key!r}: use one of {known}, or a dotted spec key like train.lr"
            )
    study = _study(spec, spec_overrides)
    execution = Execution.resolve(study.execution, study.source, **flags)
    result = run_sweep(
        study,
        execution,
        tracking_uri=tracking_uri,
        data_root=data_root,
        dry_run=dry_run,
        out=out,
        progress=progress,
    )
    if dry_run:
        _print_plan(result, out)
        return result
    for o in result.failed:
        print(f"FAILED {o.run_name}: {o.reason}", file=out)
    print_summary(result.summary, out)
    return result


def _study(spec: str | Path | Mapping[str, Any] | Study, overrides: dict[str, Any]) -> Study:
    """The validated study, overrides applied: from a file or ready study, a dict, or a Study as it is."""
    import copy

    from seedvar.errors import UserError
    from seedvar.plan import Study, load_study, parse_study
    from seedvar.plan.spec import set_dotted

    if isinstance(spec, Study):
        if overrides:
            raise UserError(
                f"overrides ({', '.join(overrides)}) apply to a spec file, a ready study or a dict, not to a "
                "parsed Study: pass the spec itself"
            )
        return spec
    if isinstance(spec, Mapping):
        raw = copy.deepcopy(dict(spec))
        for key, value in overrides.items():
            set_dotted(raw, key, value)
        return parse_study(raw, source="<dict spec>")
    return load_study(spec, overrides)


def _print_plan(result: SweepResult, out: TextIO) -> None:
    from seedvar.sweeper.status import plan_table

    print(plan_table(result.configs, result.status).to_string(index=False), file=out)
    counts = pd.Series(list(result.status.values())).value_counts().to_dict()
    print(
        f"{len(result.configs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), file=out
    )
    target = result.study.target
    if target.active:
        print(f"\ntwo-stage: {target.rule()}", file=out)
        print(stage_table(result).to_string(index=False), file=out)


def stage_table(result: SweepResult) -> pd.DataFrame:
    """Per condition of a two-stage sweep: its pilot's status, seed std and the (projected) replicates."""
    target = result.study.target
    rows = [
        {
            "condition": c,
            "pilot": f"{d.n0}/{d.n0}",
            "seed_std": round(d.s, 3),
            "replicates": d.n,
            "more": d.more,
            "half_width": round(d.half_width, 3),
            "capped": "yes" if d.capped else "",
        }
        for c, d in result.decisions.items()
    ]
    rows += [
        {"condition": c, "pilot": why.removeprefix("pilot ").split(" ")[0], "note": why}
        for c, why in result.undecided.items()
    ]
    columns = ["condition", "pilot", "seed_std", "replicates", "more", "half_width", "capped", "note"]
    table = pd.DataFrame(rows, columns=columns).astype(object).fillna("")
    if not result.undecided:
        table = table.drop(columns="note")
    return table.rename(columns={"seed_std": f"seed_std ({target.mode})"})


def print_summary(summary: pd.DataFrame, out: TextIO) -> None:
    """The table a sweep ends with."""
    if summary.empty:
        print("no finished runs yet", file=out)
        return
    print(
        "\ntest accuracy (%) over every pass of every finished run; 95% CI: of the mean over its runs",
        file=out,
    )
    shown = summary.drop(columns=["ci_low", "ci_high"])
    shown.insert(
        shown.columns.get_loc("mean") + 1,
        "95% CI",
        [
            f"{lo:.2f}-{hi:.2f}" if pd.notna(lo) and pd.notna(hi) else "-"
            for lo, hi in zip(summary["ci_low"], summary["ci_high"], strict=True)
        ],
    )
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"), file=out)


RUNS_COLUMNS = [
    "run_id",
    "run",
    "model",
    "condition",
    "deterministic",
    "variant",
    "varied",
    "replicate",
    "config_hash",
    "status",
    "mode",
    "passes",
    "acc_mean",
    "acc_std",
    "flip_rate",
    "data_fingerprint",
]


def runs(
    experiment: str,
    tracking_uri: str | None = None,
    *,
    metric: str | None = None,
    by: Sequence[str] | str | None = None,
    seed_params: Sequence[str] | None = None,
    retry_for: float | None = None,
) -> pd.DataFrame:
    """A study's trained-model runs as a DataFrame, one row per run and test mode (one row with no mode for
    a run that did not finish): model, condition, seeds (`seed.<source>` columns), config hash, status,
    accuracy mean and std over passes and flip rate in % points, and the data fingerprint.

    With `metric`, any experiment's runs (seedvar's or not), one row per finished run with a value of that
    metric: run_id, run, status, condition, seed, the metric, and the params that define the conditions
    (`by`, or every param that varies except the seed params), as `seedvar report --metric` reads them."""
    from seedvar.errors import UserError
    from seedvar.plan import SOURCES
    from seedvar.record import schema as s
    from seedvar.record.reader import StoredRun, child_runs
    from seedvar.record.store import Store
    from seedvar.results import MODES
    from seedvar.stats.samples import Samples

    store = Store(tracking_uri, create=False, retry_for=retry_for)
    if metric is not None:
        from seedvar.analysis import foreign

        found = foreign.from_experiment(
            store, experiment, metric, by=_names(by), seed_params=tuple(seed_params or foreign.SEED_PARAMS)
        )
        return foreign.runs_frame(found)
    exp_id = store.experiment_id(experiment, create=False)
    if exp_id is None:
        known = ", ".join(store.experiment_names()) or "none yet"
        raise UserError(
            f"no study named {experiment!r} in {store.uri} (studies: {known}); run `seedvar sweep` first"
        )
    seeds = [f"{s.PARAM_SEED_PREFIX}{src}" for src in SOURCES]

    def base(r: StoredRun) -> dict[str, object]:
        return {
            "run_id": r.run_id,
            "run": r.name,
            "model": r.model,
            "condition": r.condition.name,
            "deterministic": r.deterministic,
            "variant": r.variant,
            "varied": r.varied,
            "replicate": r.replicate,
            "config_hash": r.config_hash,
            "status": r.status,
            "data_fingerprint": r.params.get(f"{s.PARAM_DATA_PREFIX}fingerprint", ""),
            **{k: int(r.params[k]) if k in r.params else None for k in seeds},
        }

    runs = child_runs(store, exp_id)
    keyed = []  # (sort key, row): by run name, start, then mode
    for cell in Samples.of([r for r in runs if r.finished], MODES).values():
        for m, r in zip(cell.models, cell.runs, strict=True):
            row = {
                **base(r),
                "mode": cell.mode,
                "passes": m.n_passes,
                "acc_mean": m.mean,
                "acc_std": m.std,
                "flip_rate": m.flip_rate,
            }
            keyed.append(((r.name, r.start_time, MODES.index(cell.mode)), row))
    nan = float("nan")
    for r in runs:
        if not r.finished or not r.modes:  # a run with no test summary: one row with no mode
            row = {**base(r), "mode": None, "passes": None, "acc_mean": nan, "acc_std": nan, "flip_rate": nan}
            keyed.append(((r.name, r.start_time, -1), row))
    rows = [row for _, row in sorted(keyed, key=lambda kr: kr[0])]
    return pd.DataFrame(rows, columns=[*RUNS_COLUMNS, *seeds])


def samples(
    experiment: str, tracking_uri: str | None = None, *, retry_for: float | None = None, cache: bool = True
) -> Samples:
    """A study's runs in the one shape every table of its report starts from: per (condition, mode) a Cell
    of its trained models (the reference runs, the seeds the report ranks), each with its accuracy in every
    test pass (points), recomputed from the logged predictions. `cells["hybridsn", "train"].per_pass()`
    (models x passes), `.means()` (one value per seed), `.interval()` (the report's 95% CI);
    `cells.scores("eval")` (per condition, what the report compares)."""
    from seedvar.analysis import load, tables
    from seedvar.record.reader import reference_runs
    from seedvar.record.store import Store

    store = Store(tracking_uri, create=False, retry_for=retry_for)
    study = load.load_study(store, experiment, cache=cache)
    return tables.samples_of(reference_runs(study.finished))


@dataclass
class Report:
    """A report as data: the page's headline and the numbers at a glance (each a label, a value with its 95%
    interval and the table it comes from), the answer's sentences, every table as a DataFrame, and the
    folder it was written to (None when nothing was written)."""

    experiment: str
    answer: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    folder: Path | None = None
    logged: str = ""  # where in MLflow the folder was logged (log=True), as one line
    loaded: str = ""  # how many runs were read from the store, how many came from the local run cache
    headline: str = ""  # the report's first sentence: what the seeds tell
    glance: list[tuple[str, str, str]] = field(default_factory=list)  # (what, value with its CI, table)


def report(
    experiment: str | pd.DataFrame | None = None,
    out: str | Path | None = None,
    *,
    metric: str | None = None,
    by: Sequence[str] | str | None = None,
    csv: str | Path | None = None,
    seed_params: Sequence[str] | None = None,
    lower_is_better: bool = False,
    target_ci: float | None = None,
    target_diff: float | None = None,
    tracking_uri: str | None = None,
    formats: Sequence[str] = ("html", "md"),
    log: bool = False,
    retry_for: float | None = None,
    cache: bool = True,
    claims: Mapping[str, float] | None = None,
    resolution: float | None = None,
    bounds: tuple[float, float] | None = None,
) -> Report:
    """Read a study's runs back from MLflow and build its report; write it to `out` (HTML, Markdown, CSV
    tables, PNG figures) when given, and log that folder to the study's latest sweep run when `log`.
    With `cache` (the default) runs read by an earlier report come from a local cache, so a report after
    a few new runs reads only those from the store.

    Runs seedvar did not train: name a `metric` and the report compares its values across the conditions
    `by` defines (default: every param that varies except the seed params), for an experiment's runs, a
    `csv` file or a DataFrame passed as `experiment`, one row per run. `lower_is_better` for losses;
    `target_ci` asks Stein's seeds for a 95% interval that narrow, `target_diff` sizes the power table;
    `resolution`, the metric's step, floors each std (default: inferred from the values' decimals);
    `bounds` (lo, hi), the metric's possible range, keeps every interval inside it (default: unknown)."""
    from seedvar.analysis import foreign
    from seedvar.analysis.report import MetricSource, build_report
    from seedvar.errors import UserError

    frame = experiment if isinstance(experiment, pd.DataFrame) else None
    name = None if frame is not None else experiment
    if (frame is not None or csv is not None) and metric is None:
        raise UserError("a table of results needs the metric to report: pass metric=<its column>")
    if name is None and frame is None and csv is None:
        raise UserError("name an experiment, or pass a table of results (a DataFrame or csv=<path>)")
    if resolution is not None and not resolution >= 0:
        raise UserError(f"resolution={resolution}: the metric's step must be >= 0 (0: no floor)")
    if bounds is not None and not (len(bounds) == 2 and float(bounds[0]) < float(bounds[1])):
        raise UserError(
            f"bounds={bounds}: give the metric's range as (low, high) with low < high, e.g. (0, 1)"
        )
    claimed = tuple((str(k), float(v)) for k, v in (claims or {}).items())
    source = (
        MetricSource(
            metric,
            tuple(_names(by) or ()),
            tuple(seed_params or foreign.SEED_PARAMS),
            lower_is_better,
            csv,
            frame,
            target_ci,
            target_diff,
            claimed,
            resolution,
            tuple(map(float, bounds)) if bounds is not None else None,
        )
        if metric is not None
        else None
    )
    built = build_report(
        name,
        metric=source,
        tracking_uri=tracking_uri,
        out=out,
        formats=formats,
        retry_for=retry_for,
        log=log,
        cache=cache,
        by=tuple(_names(by) or ()),
        claims=() if source is not None else claimed,
    )
    label = name or (str(csv) if csv is not None else "DataFrame")
    return Report(
        label,
        built.answer,
        built.tables,
        built.folder,
        built.logged,
        built.loaded,
        built.headline,
        [(b.label, b.value, b.table) for b in built.glance],
    )


def _names(by: Sequence[str] | str | None) -> list[str] | None:
    """`model,depth` or ["model", "depth"] -> ["model", "depth"]."""
    if by is None:
        return None
    items = by.split(",") if isinstance(by, str) else list(by)
    return [b.strip() for b in items if b.strip()] or None


def reproduce(
    run_id: str,
    *,
    tracking_uri: str | None = None,
    device: str | None = None,
    data_root: str | Path | None = None,
    download: bool = False,
    tag: bool = True,
) -> Reproduction:
    """Retrain one logged run from its logged config and seeds, test it in its logged modes and passes, and
    compare: `rep.verdict` ("reproduced bit for bit", "weights differ; predictions identical", or
    "differs: ..."), `rep.lines()` the details, `rep.exit_code` 0 or 1. Bad input raises UserError."""
    from seedvar.sweeper.reproduce import reproduce as run

    return run(
        run_id,
        tracking_uri=tracking_uri,
        device=device,
        data_root=str(data_root) if data_root is not None else None,
        download=download,
        tag=tag,
    )


def ready_studies() -> list[ReadyStudy]:
    """The ready studies that install with seedvar: name, path, description, where they run."""
    from seedvar.plan.ready import ready_studies as found

    return found()
