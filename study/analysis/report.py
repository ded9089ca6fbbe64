"""`seedvar report`: a study's runs, read back from MLflow, become the answer, tables and figures.

A one-way pipeline: load (everything from MLflow, once) -> tables -> sentences -> figures -> render.
Output: index.html (self-contained), report.md, tables/*.csv and figures/*.png.
"""

from __future__ import annotations

from pathlib import Path

from study.analysis import figures, load, render, sentences, tables
from study.analysis.render import Section
from study.errors import UserError
from study.record import schema as s
from study.record.store import Store

FORMATS = ("html", "md")


def write_report(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    out: str | Path | None = None,
    formats: list[str] | tuple[str, ...] = FORMATS,
) -> Path:
    """Build every section and write the requested formats plus tables/*.csv and figures/*.png."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"--format {','.join(formats)}: choose from html, md (comma-separated)")
    study = load.load_study(Store(tracking_uri, create=False), experiment)
    out_dir = Path(out) if out else Path("reports") / experiment
    _writable(out_dir)
    render.write(out_dir, f"seedvar report: {experiment}", build_sections(study), formats)
    return out_dir


def log_report(experiment: str, out_dir: str | Path, *, tracking_uri: str | None = None) -> str:
    """Log a written report folder as artifacts (`report/`) of the experiment's latest sweep run, so it
    opens from the MLflow UI's artifact view; returns the line to print."""
    store = Store(tracking_uri, create=False)
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
    sections = [
        Section("The answer", text=sentences.answer(study.finished, t)),
        Section("Study settings", tables={"settings": t.settings}),
        Section(
            "Accuracy by model and test mode",
            text=[
                "Accuracy in percentage points over every test pass of every trained model; `seed std` is the "
                "spread of per-model means (training randomness alone); the 95% CI of the mean is a bootstrap "
                "over trained models (BCa)."
            ],
            tables={"accuracy": t.accuracy},
            figures={"accuracy_distribution": figures.accuracy_distribution(t.passes)},
        ),
        variance_section(t),
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
                "Sources of training randomness",
                text=[
                    "Each row varies one source of randomness across replicates and holds every other at the "
                    "base seed; `numerical` repeats identical seeds, so only nondeterministic kernels can move "
                    "it. `share_of_sum` is each source's variance over the sum of the sources' variances."
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
    if t.maps is not None:
        m = t.maps
        sections.append(
            Section(
                "Classification maps",
                text=[
                    f"Model {m.run}: {m.flipped} of {len(m.pass_a)} test pixels change class between two "
                    f"{m.mode}-mode passes of the same trained model; in eval mode none can."
                ],
                figures={"classification_maps": figures.classification_maps(m)},
            )
        )
    sections.append(failure_section(t))
    return sections


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
            "dropout), both in points². Balanced designs use the ANOVA estimator (negative estimates "
            "truncated at 0, flagged); unbalanced ones REML.",
            *(f"95% CIs: {m}." for m in methods),
        ],
        tables={"variance_components": vc},
        figures={"variance_components": figures.variance_components(vc)},
    )


def comparison_section(t: tables.Tables) -> Section:
    """Pairwise tests between conditions (eval accuracy, one value per trained model), and power."""
    sec = Section("Comparisons and power")
    if not t.power.empty:
        sec.text.append(
            "Replicates per model needed to detect a difference of 1 (or 0.5) accuracy points between two "
            "models with 80% power at alpha 0.05, at the observed seed-to-seed spread in eval mode."
        )
        sec.tables["power"] = t.power
    if not t.comparisons.empty:
        sec.tables["comparisons"] = t.comparisons
        sec.text.append(
            "Welch t-test, Mann-Whitney U, bootstrap CI of the difference of means, P(A > B), Holm-adjusted "
            "p-values across all pairs; Levene/Brown-Forsythe for whether the spreads differ."
        )
        diff, pv = tables.comparison_matrices(t.comparisons, list(t.power["condition"]))
        sec.figures["comparison_matrix"] = figures.comparison_matrix(diff, pv)
    if not t.spread_tests.empty:
        sec.tables["spread_tests"] = t.spread_tests
    if not sec.tables:
        sec.text.append("Comparisons need at least two trained models per condition.")
    return sec


def failure_section(t: tables.Tables) -> Section:
    if t.failures.empty:
        return Section("Failed and unfinished runs", text=["None: every run finished."])
    return Section(
        "Failed and unfinished runs",
        text=[f"{len(t.failures)} run(s) did not finish; they are left out above."],
        tables={"failed_runs": t.failures},
    )
