"""`seedvar report`: a study's runs, read back from MLflow, become the answer, tables and figures.

A one-way pipeline: load (everything from MLflow, once) -> tables -> sentences -> figures -> render.
Output: index.html (self-contained), report.md, tables/*.csv and figures/*.png.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from threadpoolctl import threadpool_limits

from seedvar.analysis import foreign, load, registry, render
from seedvar.analysis.pipeline import Tables
from seedvar.analysis.render import Bullet, Section
from seedvar.errors import UserError
from seedvar.record import schema as s

if TYPE_CHECKING:  # the store (MLflow, SQLAlchemy) loads where one is read: a CSV's report needs none
    from seedvar.record.store import Store

FORMATS = ("html", "md")
# BLAS_THREADS: the report's statistics multiply small matrices, where OpenBLAS's second thread spins
# against any other busy process: on a busy 2-core machine one thread did the test-noise products 18x
# faster (0.04 s against 0.79 s per condition of 100 models); on a quiet one two threads save 0.06 s of
# 0.30 per condition. One thread, then: a report is often made while sweeps train.


@dataclass
class Built:
    """A report as data (the glance, the answer, every table) and where it went."""

    answer: list[str]
    tables: dict[str, pd.DataFrame]
    folder: Path | None = None
    logged: str = ""  # the line saying where in MLflow the folder was logged, when it was
    loaded: str = ""  # the line saying how many runs came from the store and how many from the cache
    headline: str = ""  # the page's first sentence
    glance: list[Bullet] = field(default_factory=list)  # the numbers beside it, each with its interval


@dataclass(frozen=True)
class MetricSource:
    """A report of one logged metric instead of a seedvar study: of an MLflow experiment's runs (any,
    seedvar's or not), of a CSV file, or of a DataFrame, one row per run."""

    metric: str
    by: tuple[str, ...] = ()
    seed_params: tuple[str, ...] = foreign.SEED_PARAMS
    lower_is_better: bool = False
    csv: str | Path | None = None
    frame: pd.DataFrame | None = None
    half_width: float | None = None  # Stein's seeds for a 95% interval this narrow (--target-ci)
    diff: float | None = None  # the difference the power table sizes for (--target-diff)
    claims: tuple[tuple[str, float], ...] = ()  # (condition, claimed value): --claim, held against the seeds
    resolution: float | None = None  # the metric's step (--resolution); None: inferred from the decimals
    bounds: tuple[float, float] | None = None  # the metric's possible range (--bounds); None: unknown


def build_report(
    experiment: str | None,
    *,
    metric: MetricSource | None = None,
    tracking_uri: str | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] = FORMATS,
    retry_for: float | None = None,
    log: bool = False,
    cache: bool = True,
    by: tuple[str, ...] = (),
    claims: tuple[tuple[str, float], ...] = (),
) -> Built:
    """Load the runs, build every section, write the requested formats plus tables/*.csv and figures/*.png
    to `out` (nothing when it is None), and log a study's folder to its latest sweep run. With `metric`,
    the report of that metric for runs seedvar did not train (nothing is logged into their store)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"--format {','.join(formats)}: choose from html, md (comma-separated)")
    out_dir = Path(out) if out is not None else None
    if metric is not None:
        runs = _metric_runs(experiment, metric, tracking_uri, retry_for)
        if out_dir is not None:
            _writable(out_dir)
        t = registry.of_metric(runs, claims=metric.claims, half_width=metric.half_width, diff=metric.diff)
        with threadpool_limits(1):  # see BLAS_THREADS
            sections = _sections(t)
        title = f"seedvar report: {metric.metric} of {runs.source}"
        loaded = f"read {len(runs.table) + len(runs.left_out)} runs"
        return _written(sections, out_dir, formats, title, loaded, source=runs.source)
    from seedvar.record.store import Store

    store = Store(tracking_uri, create=False, retry_for=retry_for)
    # a study with nothing to report creates no folder
    study = load.load_study(store, experiment or "", cache=cache, by=by)
    if out_dir is not None:
        _writable(out_dir)
    t = registry.of_study(study, claims=claims or study.claims)  # --claim, else the spec's own
    with threadpool_limits(1):  # see BLAS_THREADS
        sections = _sections(t)
    cached = len(study.finished) - study.read
    loaded = f"read {study.read} runs from the store" + (
        f", {cached} from the local run cache" if cached else ""
    )
    built = _written(
        sections,
        out_dir,
        formats,
        f"seedvar report: {experiment}",
        loaded,
        source=f"the MLflow runs of {experiment}",
    )
    if out_dir is not None and log:
        built.logged = log_report(store, experiment or "", out_dir)
    return built


def _sections(t: Tables) -> list[Section]:
    """Every section of the report; claims first, so that an unknown condition stops it in one line."""
    if t.claimed:
        t["claims_held"]
    return registry.build_sections(t)


def build_sections(study: load.StudyRuns) -> list[Section]:
    """A study's sections in reading order, from its loaded runs."""
    return registry.build_sections(registry.of_study(study))


def _metric_runs(
    experiment: str | None, metric: MetricSource, tracking_uri: str | None, retry_for: float | None
) -> foreign.MetricRuns:
    common = {
        "by": list(metric.by) or None,
        "seed_params": metric.seed_params,
        "lower_is_better": metric.lower_is_better,
    }
    if metric.frame is not None:
        runs = foreign.from_frame(metric.frame, metric.metric, source="the DataFrame", **common)
    elif metric.csv is not None:
        runs = foreign.from_csv(metric.csv, metric.metric, **common)
    else:
        from seedvar.record.store import Store

        store = Store(tracking_uri, create=False, retry_for=retry_for)
        runs = foreign.from_experiment(store, experiment or "", metric.metric, **common)
    runs.given_resolution = metric.resolution
    runs.bound(metric.bounds)
    return runs


def _written(
    sections: list[Section],
    out_dir: Path | None,
    formats: Sequence[str],
    title: str,
    loaded: str,
    source: str = "MLflow runs",
) -> Built:
    """The report as data, and its folder written when there is one."""
    top = next((sec for sec in sections if sec.headline), None)
    built = Built(
        next((sec.text for sec in sections if sec.answer), sections[0].text),
        {name: df for sec in sections for name, df in sec.tables.items()},
        out_dir,
        loaded=loaded,
        headline=top.headline if top else "",
        glance=list(top.bullets) if top else [],
    )
    if out_dir is None:
        render.close_figures(sections)
    else:
        render.write(out_dir, title, sections, list(formats), source)
    return built


def log_report(store: Store, experiment: str, out_dir: str | Path) -> str:
    """Log a written report folder as artifacts (`report/`) of the experiment's latest sweep run, so it
    opens from the MLflow UI's artifact view; returns the line to print."""
    exp_id = store.experiment_id(experiment, create=False)
    sweep = store.latest_run(exp_id, s.tag_filter(s.TAG_KIND, s.KIND_SWEEP)) if exp_id else None
    if sweep is None:
        return f"report not logged to MLflow: {experiment!r} has no sweep run"
    store.log_folder(sweep.info.run_id, out_dir, s.ARTIFACT_REPORT)
    return f"report logged to MLflow run {sweep.info.run_name} ({sweep.info.run_id}), artifacts {s.ARTIFACT_REPORT}/"


def _writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(
            f"cannot write the report folder {out_dir} ({exc.strerror}): choose another with --out"
        ) from None
