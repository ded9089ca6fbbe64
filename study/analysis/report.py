"""`seedvar report`: a study's runs, read back from MLflow, become the answer, tables and figures.

A one-way pipeline: load (everything from MLflow, once) -> tables -> sentences -> figures -> render.
Output: index.html (self-contained), report.md, tables/*.csv and figures/*.png.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from threadpoolctl import threadpool_limits

from seedvar.analysis import (
    conditions,
    figures,
    foreign,
    glance,
    load,
    metric_report,
    render,
    sentences,
    stages,
    tables,
    twins,
)
from seedvar.analysis.render import Section
from seedvar.errors import UserError
from seedvar.record import schema as s
from seedvar.record.reader import reference_runs
from seedvar.stats.interval import ALPHA
from seedvar.stats.power import POWER, REACHED

if TYPE_CHECKING:  # the store (MLflow, SQLAlchemy) loads where one is read: a CSV's report needs none
    from seedvar.record.store import Store

FORMATS = ("html", "md")
# BLAS_THREADS: the report's statistics multiply small matrices, where OpenBLAS's second thread spins
# against any other busy process: on a busy 2-core machine one thread did the test-noise products 18x
# faster (0.04 s against 0.79 s per condition of 100 models); on a quiet one two threads save 0.06 s of
# 0.30 per condition. One thread, then: a report is often made while sweeps train.


@dataclass
class Built:
    """A report as data (the answer, every table) and where it went."""

    answer: list[str]
    tables: dict[str, pd.DataFrame]
    folder: Path | None = None
    logged: str = ""  # the line saying where in MLflow the folder was logged, when it was
    loaded: str = ""  # the line saying how many runs came from the store and how many from the cache


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
        with threadpool_limits(1):
            luck = None
            if metric.claims:  # first, so that an unknown condition stops the report in one line
                from seedvar.analysis.claims import claims_section

                values = {str(c): g["value"].to_numpy(float) for c, g in runs.table.groupby("condition")}
                luck = claims_section(values, dict(metric.claims), runs.lower_is_better)
            sections = metric_report.build_sections(runs, half_width=metric.half_width, diff=metric.diff)
            if luck is not None:
                sections.append(luck)
        title = f"seedvar report: {metric.metric} of {runs.source}"
        loaded = f"read {len(runs.table) + len(runs.left_out)} runs"
        return _written(sections, out_dir, formats, title, loaded, source=runs.source)
    from seedvar.record.store import Store

    store = Store(tracking_uri, create=False, retry_for=retry_for)
    # a study with nothing to report creates no folder
    study = load.load_study(store, experiment or "", cache=cache, by=by)
    if out_dir is not None:
        _writable(out_dir)
    with threadpool_limits(1):  # see BLAS_THREADS
        claims = claims or study.claims  # --claim, else the spec's own
        luck = study_claims(study, claims) if claims else None  # first: an unknown condition is one line
        sections = build_sections(study)
        if luck is not None:
            sections.append(luck)
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


def study_claims(study: load.StudyRuns, claims: tuple[tuple[str, float], ...]) -> Section:
    """Published numbers (--claim) held against each condition's eval accuracy, one value per trained model
    (the mean of its eval passes, the seeds the report ranks: its reference runs): the lab's "was 96.89 a
    lucky seed?" asked of a seedvar study."""
    from seedvar.analysis.claims import claims_section

    return claims_section(tables.eval_samples(reference_runs(study.finished)), dict(claims), False)


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
    built = Built(
        next((sec.text for sec in sections if sec.answer), sections[0].text),
        {name: df for sec in sections for name, df in sec.tables.items()},
        out_dir,
        loaded=loaded,
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


def build_sections(study: load.StudyRuns) -> list[Section]:
    """The report's sections in reading order, from the loaded runs."""
    t = tables.build(study)
    stein = stages.stein_table(study.finished, study.target) if study.target else None
    said = stages.sentences(stein, study.target) if stein is not None else []
    several = len(t.conditions) > 1
    headline, bullets = glance.answer(study.finished, t)
    order = list(t.conditions["condition"]) if several else list(dict.fromkeys(t.accuracy["condition"]))
    sections = [
        Section(
            "At a glance",
            headline=headline,
            bullets=bullets,
            figures={"intervals": figures.intervals(t.accuracy, t.variance, order)}
            if len(t.accuracy)
            else {},
        ),
        Section(
            "The answer",
            text=sentences.answer(study.finished, t) + said,
            tables={"conditions": t.conditions} if several else {},
            tables_first=True,
            whole=True,
            answer=True,
        ),
        *twin_section(t),
        *(
            [Section("Seeds decided by the data", text=[stages.EXPLAINED], tables={"two_stage": stein})]
            if said
            else []
        ),
        *(
            [Section("Each condition", text=sentences.condition_paragraphs(study.finished, t))]
            if several
            else []
        ),
        Section("Study settings", tables={"settings": t.settings}, folded=True),
        Section(
            "Accuracy by model and test mode",
            text=[
                "Accuracy in percentage points over every test pass of every trained model; `seed std` is the "
                "spread of per-model means (training randomness alone); the 95% CI of the mean is Student's "
                "t-interval over the per-model means, its std at least `resolution` / sqrt(12) (`resolution`: "
                "100 / test samples, the grid an accuracy lies on), which holds 95% from 3 seeds up."
            ],
            tables={"accuracy": t.accuracy},
            figures={"accuracy_distribution": figures.accuracy_distribution(t.passes)},
        ),
        *test_noise_section(t),
        *mode_gap_section(t),
        degenerate_section(t),
        variance_section(t),
        *split_section(t),
        Section(
            "Prediction flips",
            text=[
                "`flip rate`: the share of test samples whose predicted class differs between two passes of the "
                "same trained model (mean over pairs of passes and over models). `churn`: the share that differs "
                "between two trained models in eval mode (mean over pairs, on the test samples they share)."
            ],
            tables={"flip_rates": t.flips},
            figures={"flip_rates": figures.flip_rates(t.flips)},
        ),
    ]
    if not t.per_source.empty:
        sections.append(
            Section(
                "Sources of training randomness against all of them",
                text=[
                    "Each source row varies one source of randomness across replicates and holds every other at "
                    "the base seed; `all` varies every source together (the reference, ordinary seeds); "
                    "`numerical` repeats identical seeds, so only nondeterministic kernels can move it. "
                    "`ratio_to_all` is a source's variance of eval accuracy over the `all` variance; its 95% "
                    "interval comes from the F distribution (scipy.stats.f) and assumes normal accuracies. "
                    "Sources varied one at a time do not add up to `all`, so no shares of a sum are given; "
                    "overlapping intervals rank nothing."
                ],
                tables={"per_source": t.per_source},
                figures={"per_source": figures.per_source(t.source_values)},
            )
        )
    sections.append(comparison_section(t))
    if not t.curves.empty:
        sections.append(
            Section("Training curves", figures={"training_curves": figures.training_curves(t.curves)})
        )
    if t.maps:
        sections.append(
            Section(
                "Classification maps",
                text=[
                    f"{m.condition}, model {m.run}: {m.flipped} of {len(m.pass_a)} test pixels change class "
                    f"between two {m.mode}-mode passes of the same trained model; in eval mode none can."
                    for m in t.maps[: figures.MAX_MAPS]
                ]
                + (
                    [f"Maps of the first {figures.MAX_MAPS} of {len(t.maps)} conditions."]
                    if len(t.maps) > figures.MAX_MAPS
                    else []
                )
                + [
                    "The split panel shows the training pixels (dark), the test pixels (light) and, for a "
                    "spatial split, the labelled pixels left out as the gap (orange) so that no test window "
                    "holds a training pixel."
                ],
                figures={"classification_maps": figures.classification_maps(t.maps)},
            )
        )
    sections.append(failure_section(t))
    return sections


def twin_section(t: tables.Tables) -> list[Section]:
    """The implementation twins' table (tables/twins.csv), when the study trained any."""
    if t.twins.empty:
        return []
    return [
        Section(
            "Implementation twins: the same seeds, another implementation",
            text=[
                "Twins are runs of the same seeds that differ in one implementation setting only (`setting`; `a` "
                "at its reference value: deterministic kernels, the fewest threads, fp32, the CPU). `pairs`: twin "
                "pairs; `identical_weights`: pairs with the same weights sha256; `churn`: the share of test "
                "samples (%) whose eval prediction differs between twins, `churn_seeds` the same between "
                "different seeds of a and of b; `diff_std`: the std of the twins' eval accuracy differences "
                "(points) with its 95% chi-square interval; `share`: the implementation's share of one run's "
                "seed variance (%), from the variances of the pairs' differences and sums, its 95% interval from "
                "the F distribution (exact for normal accuracies; covered 94-96% at 3-10 pairs in simulation); "
                "`time_ratio`: b's seconds per epoch (the last epoch) over a's, geometric mean over pairs.",
            ],
            tables={"twins": t.twins[twins.COLUMNS]},
        )
    ]


def test_noise_section(t: tables.Tables) -> list[Section]:
    if t.test_noise.empty:
        return []
    methods = list(dict.fromkeys(t.test_noise["ci_method"]))
    return [
        Section(
            "Test-set noise: the finite test set against the models",
            text=[
                "Each test sample is a coin flip for a trained model, so eval accuracy on n samples varies across "
                "models even at equal distribution-level accuracy (Jordan 2023). The test samples are split at "
                "random into halves A and B (stratified by class, matched by sample id across models); across "
                "models cov(acc_A, acc_B) estimates the variance of the models' distribution-level accuracy "
                "(`models`), and the rest of var(acc) is test-set sampling noise (`test_set`, computed as "
                "var(acc_A - acc_B) / 4, which equals var(acc) - cov(acc_A, acc_B) for equal halves). "
                "Averaged over many random halvings; variances in points², stds in points. The binomial "
                "term sqrt(p(1-p)/n), the test-set std if every sample were an independent coin flip at the "
                "mean accuracy p, is an upper bound on the test set's part (Jensen's inequality).",
                *(f"95% CIs: {m}." for m in methods),
            ],
            tables={"test_noise": t.test_noise.drop(columns="ci_method")},
        )
    ]


def mode_gap_section(t: tables.Tables) -> list[Section]:
    if t.mode_gaps.empty:
        return []
    return [
        Section(
            "Train mode: BatchNorm batch statistics and dropout",
            text=[
                "Train mode turns on both BatchNorm batch statistics and dropout; MC dropout turns on dropout "
                "only. So per trained model train - eval = (train - mc_dropout) + (mc_dropout - eval): the "
                "first part is BatchNorm, the second dropout. Means over trained models in points, with the 95% "
                "t-interval of the mean of the paired differences (zero width where every model gives exactly "
                "0: no BatchNorm or no dropout)."
            ],
            tables={"mode_gaps": t.mode_gaps},
        )
    ]


def degenerate_section(t: tables.Tables) -> Section:
    """One line when nothing is degenerate or suspect (the table folded below it); else the flags."""
    how = [
        "Per condition and mode: models whose accuracy is not significantly above chance (the share of the "
        f"most frequent test class; one-sided exact binomial test at {ALPHA:g}), models that predict a single "
        "class in every pass, and whether all models tie (`tied`: the same accuracy on every seed, as models "
        "at 100% do; ties are data, never degenerate). `degenerate`: every model at chance or predicting "
        "one class; `suspect`: some models are."
    ]
    bad = t.degenerate_conditions
    d = t.degenerate
    if d.empty or not d["suspect"].any():
        return Section(
            "Degenerate runs",
            text=[
                "No degenerate runs: every trained model scores above chance in every mode, and none "
                "predicts a single class."
            ],
            tables={"degenerate": d} if not d.empty else {},
            fold_tables=True,
            details=how,
        )
    text = list(how)
    if bad:
        text.append(
            f"Degenerate in eval mode: {', '.join(bad)}. No power analysis or comparison is drawn from "
            "these conditions."
        )
    else:
        text.append("No condition is degenerate in eval mode.")
    return Section("Degenerate runs", text=text, tables={"degenerate": d})


def split_section(t: tables.Tables) -> list[Section]:
    if t.splits.empty:
        return []
    return [
        Section(
            "Train/test split and leakage",
            text=[
                "`leakage`: the share of test pixels (%) whose window holds at least one training pixel, so "
                "the model was trained on part of what it is tested on (Nalepa et al. 2019). A random pixel "
                "split leaks nearly everywhere; a spatial split assigns whole blocks to train or test and "
                "leaves out the test pixels within half a window of a training pixel (the gap), so none leaks. "
                "Classes whose pixels could not land on both sides are named; they are kept, not dropped."
            ],
            tables={"splits": t.splits},
        )
    ]


def variance_section(t: tables.Tables) -> Section:
    if t.variance.empty:
        return Section(
            "Variance components",
            text=["Variance components need at least two trained models and two passes per model."],
        )
    methods = list(dict.fromkeys(t.variance["ci_method"]))
    vc = t.variance.drop(columns="ci_method")
    return Section(
        "Variance components",
        text=[
            "One-way random-effects model per model and mode: *between* = variance between trained models "
            "(training randomness), *within* = variance across the test passes of one model (test-time "
            "dropout), both in points². The ANOVA estimator on a balanced design (each model's first passes, "
            "as many as the model with the fewest has; negative estimates truncated at 0, flagged).",
            *(f"95% CIs: {m}." for m in methods),
        ],
        tables={"variance_components": vc},
        figures={"variance_components": figures.variance_components(vc)},
    )


def comparison_section(t: tables.Tables) -> Section:
    """Pairwise tests between conditions (eval accuracy, one value per trained model), and power."""
    sec = Section("Comparisons and power")
    if t.degenerate_conditions:
        sec.text.append(
            f"Left out as degenerate: {', '.join(t.degenerate_conditions)} (see Degenerate runs)."
        )
    if not t.power.empty:
        diffs = ", ".join(
            c.removeprefix("replicates_for_").replace("_point", "")
            for c in t.power.columns
            if c.startswith("replicates_for_")
        )
        sec.text.append(
            f"Replicates per condition needed to detect a difference of {diffs} accuracy points (the last: the "
            f"closest pair's) against a condition of the same spread, with {POWER:.0%} power at alpha {ALPHA:g}, sized at "
            f"{t.spread.how()} (each std at least the test set's resolution / sqrt(12)). Sized this way the "
            f"recommended n reaches {POWER:.0%} power in {REACHED} of simulated studies; at the observed std, in about "
            "half (the README's table)."
        )
        sec.tables["power"] = t.power
    if not t.comparisons.empty:
        sec.tables["comparisons"] = t.comparisons
        sec.text.append(
            "Welch's t-test of the difference of mean eval accuracy, with its 95% t-interval and Holm-adjusted "
            "p-values across all pairs; P(A > B) is the probability that a trained model of A scores above one "
            "of B (an effect size, not a test), under normal seeds of equal spread, with its exact 95% interval "
            "(noncentral t). No rank test is given: at 3 seeds a side Mann-Whitney's smallest two-sided p is "
            "0.1, so it cannot reject there."
        )
        compared = {*t.comparisons["a"], *t.comparisons["b"]}
        diff, pv = conditions.matrices(t.comparisons, [c for c in t.ranked["condition"] if c in compared])
        sec.figures["comparison_matrix"] = figures.comparison_matrix(diff, pv)
    if t.twin_conditions:
        sec.text.append(
            f"Not compared: {', '.join(t.twin_conditions)}, twins of another condition (the same seeds under "
            "another implementation; see Implementation twins)."
        )
    if t.comparisons.empty and not t.twin_conditions:
        sec.text.append("Comparisons need at least two trained models per condition.")
    return sec


def failure_section(t: tables.Tables) -> Section:
    if t.failures.empty:
        return Section("Failed and unfinished runs", text=["None: every run finished."])
    return Section(
        "Failed and unfinished runs",
        text=[f"{len(t.failures)} run(s) did not finish; they are left out above."],
        tables={"failed_runs": t.failures},
        fold_tables=True,
    )
