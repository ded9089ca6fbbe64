"""Every table and section of a report, declared once: the registry the pipeline (analysis.pipeline) runs.

A table is one function and one `Table` entry here: its name (tables/<name>.csv), its inputs (a report's
inputs below, or other entries), the section it shows in, its figure, and the kinds of report it is made
for. The sections (`PARTS`) are in reading order; both kinds share the keys glance, answer, values,
comparisons, history, left_out and claims, so an entry for both names one of those. A study's report
starts from its runs; a metric's report (runs seedvar did not train, one value per run) from its values, in
the same sample shape (seedvar.stats.samples), through the same entries where they apply.

Inputs of both kinds: `samples` (Samples), `mode` (the mode the conditions are compared in), `metric` (how
its values read), `claimed` (condition, claimed value pairs), `target_diff`, `half_width`. A study's also:
`study` (StudyRuns), `finished` (its finished runs), `ref` (their reference runs: every per-condition
statistic is theirs). A metric's: `metric_runs`, and no degenerate or twin conditions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from seedvar.analysis import claims, conditions, figures, sections, setup, stages, tables, twins
from seedvar.analysis.foreign import MetricRuns
from seedvar.analysis.load import StudyRuns
from seedvar.analysis.maps import map_data
from seedvar.analysis.pipeline import METRIC, STUDY, Part, Plot, Table, Tables, assemble
from seedvar.analysis.render import Section
from seedvar.record.reader import reference_runs
from seedvar.results import EVAL
from seedvar.stats.power import Spread
from seedvar.stats.samples import Samples


def kept(scores: Mapping[str, np.ndarray], bad: Sequence[str], twin: Sequence[str]) -> dict[str, np.ndarray]:
    """The conditions that are ranked and size the seeds: neither degenerate nor another's twin."""
    return {k: v for k, v in scores.items() if k not in bad and k not in twin}


def ranked(
    scores: Mapping[str, np.ndarray],
    comparisons: pd.DataFrame,
    metric: conditions.Metric,
    grid: Mapping[str, float],
    bad: Sequence[str],
    twin: Sequence[str],
) -> pd.DataFrame:
    """The conditions compared, best first, with their intervals and group letters."""
    return conditions.summary(scores, comparisons, metric, resolution=grid, excluded=bad, twins=twin)


def comparison_matrix(
    comparisons: pd.DataFrame, ranked: pd.DataFrame, metric: conditions.Metric
) -> Figure | None:
    """The pairwise differences and Holm-adjusted p-values as two matrices, best condition first."""
    if comparisons.empty:
        return None
    compared = {*comparisons["a"], *comparisons["b"]}
    diff, pv = conditions.matrices(comparisons, [c for c in ranked["condition"] if c in compared])
    return figures.comparison_matrix(diff, pv, what=metric.label, unit=metric.axis)


def reading_order(table: pd.DataFrame, accuracy: pd.DataFrame) -> list[str]:
    """The conditions as the report reads them: best first when several, else as their runs came."""
    several = len(table) > 1
    return list(table["condition"]) if several else list(dict.fromkeys(accuracy["condition"]))


def metric_distribution(values: pd.DataFrame, metric: conditions.Metric, table: pd.DataFrame) -> Figure:
    return figures.metric_distribution(values, metric.name, list(table["condition"]))


def intervals(accuracy: pd.DataFrame, variance: pd.DataFrame, order: list[str]) -> Figure | None:
    return figures.intervals(accuracy, variance, order) if len(accuracy) else None


def two_stage(finished: list, study: StudyRuns) -> pd.DataFrame:
    """Stein's two-stage decisions, when the study's spec set a target."""
    return stages.stein_table(finished, study.target) if study.target else pd.DataFrame()


def per_source(values: pd.DataFrame, bad: Sequence[str]) -> pd.DataFrame:
    """Each source's variance against `all`, for the conditions that are not degenerate."""
    return tables.source_table(values[~values["condition"].isin(bad)] if not values.empty else values)


def power(spread: Spread, diffs: Sequence[float], metric: conditions.Metric) -> pd.DataFrame:
    """Seeds per condition to tell apart each difference, sized at the seeds' spread."""
    return conditions.power_table(spread, diffs, unit=metric.power_unit)


def without(column: str):  # noqa: ANN201
    """A view without one column (a method the section's words name instead)."""
    return lambda table: table.drop(columns=column)


S = (STUDY,)
M = (METRIC,)

TABLES: tuple[Table, ...] = (
    # what both kinds compare: one value per trained model and condition, in `mode`
    Table("scores", Samples.scores, ("samples", "mode")),
    Table("grid", Samples.resolutions, ("samples", "mode")),
    Table("lower_is_better", lambda m: m.lower_is_better, ("metric",)),
    Table("kept", kept, ("scores", "degenerate_conditions", "twin_conditions")),
    Table(
        "ranked",
        ranked,
        ("scores", "comparisons", "metric", "grid", "degenerate_conditions", "twin_conditions"),
    ),
    Table("spread", conditions.spread_of, ("kept", "grid")),
    Table("power_diffs", conditions.power_diffs, ("comparisons", "metric", "target_diff")),
    # the study's tables, each from its reference runs' samples
    Table("passes", tables.pass_table, ("samples",), kinds=S),
    Table(
        "accuracy",
        tables.accuracy_table,
        ("samples",),
        "values",
        Plot("accuracy_distribution", figures.accuracy_distribution, ("passes",)),
        kinds=S,
    ),
    Table(
        "variance_components",
        tables.variance_table,
        ("samples",),
        "variance",
        Plot(
            "variance_components",
            lambda vc: None if vc.empty else figures.variance_components(vc),
            ("variance_components",),
        ),
        kinds=S,
        view=without("ci_method"),
    ),
    Table(
        "test_noise", tables.test_noise_table, ("samples",), "test_noise", kinds=S, view=without("ci_method")
    ),
    Table("mode_gaps", tables.mode_gap_table, ("samples",), "mode_gaps", kinds=S),
    Table("degenerate", tables.degenerate_table, ("samples",), "degenerate", kinds=S),
    Table("degenerate_conditions", tables.degenerate_conditions, ("degenerate",), kinds=S),
    Table("splits", setup.split_table, ("ref",), "splits", kinds=S),
    Table(
        "flip_rates",
        tables.flip_table,
        ("samples",),
        "flips",
        Plot("flip_rates", figures.flip_rates, ("flip_rates",)),
        kinds=S,
    ),
    Table("settings", setup.settings_table, ("study",), "settings", kinds=S),
    Table("source_values", tables.source_values, ("finished",), kinds=S),
    Table(
        "per_source",
        per_source,
        ("source_values", "degenerate_conditions"),
        "sources",
        Plot("per_source", figures.per_source, ("source_values",)),
        kinds=S,
    ),
    Table("twin_pairs", twins.find_twins, ("ref",), kinds=S),
    Table("twin_conditions", twins.twin_conditions, ("twin_pairs",), kinds=S),
    Table(
        "twins", twins.twin_table, ("twin_pairs", "ref"), "twins", kinds=S, view=lambda t: t[twins.COLUMNS]
    ),
    Table("two_stage", two_stage, ("finished", "study"), "two_stage", kinds=S),
    Table(
        "conditions",
        tables.condition_table,
        ("accuracy", "mode_gaps", "variance_components", "flip_rates", "test_noise", "ranked"),
        "answer",
        kinds=S,
        shown=lambda table: len(table) > 1,
    ),
    Table(
        "order",
        reading_order,
        ("conditions", "accuracy"),
        "glance",
        Plot("intervals", intervals, ("accuracy", "variance_components", "order")),
        kinds=S,
        written=False,
    ),
    Table(
        "curves",
        tables.curve_table,
        ("finished",),
        "history",
        Plot("training_curves", figures.training_curves, ("curves",)),
        kinds=S,
        written=False,
    ),
    Table(
        "maps",
        map_data,
        ("ref",),
        "maps",
        Plot("classification_maps", figures.classification_maps, ("maps",)),
        kinds=S,
        written=False,
    ),
    Table("failed_runs", lambda study: setup.failure_table(study.runs), ("study",), "left_out", kinds=S),
    # a metric's: its conditions are the ranked table; its values and history as figures
    Table("conditions", lambda r: r, ("ranked",), "answer", kinds=M, shown=lambda table: True),
    Table(
        "values",
        lambda runs: runs.table,
        ("metric_runs",),
        "glance",
        Plot("values", metric_distribution, ("values", "metric", "conditions")),
        kinds=M,
        written=False,
    ),
    Table(
        "histories",
        lambda runs: runs.histories,
        ("metric_runs",),
        "history",
        Plot("history", lambda h, m: figures.metric_history(h, m.name), ("histories", "metric")),
        kinds=M,
        written=False,
    ),
    Table(
        "left_out",
        lambda runs: runs.left_out,
        ("metric_runs",),
        "left_out",
        kinds=M,
        shown=lambda t: len(t) > 0,
    ),
    # both: power and the pairwise comparisons; claims held against the seeds
    Table(
        "power",
        power,
        ("spread", "power_diffs", "metric"),
        "comparisons",
    ),
    Table(
        "comparisons",
        conditions.comparisons,
        ("kept", "grid"),
        "comparisons",
        Plot("comparison_matrix", comparison_matrix, ("comparisons", "ranked", "metric")),
    ),
    Table("claims_held", claims.hold_claims, ("scores", "claimed", "lower_is_better")),
    Table("claims", lambda held: held.claims, ("claims_held",), "claims"),
    Table(
        "expected_max",
        lambda held: held.expected_max,
        ("claims_held",),
        "claims",
        Plot("expected_max", claims.figure, ("expected_max", "claimed", "lower_is_better")),
    ),
)

PARTS: tuple[Part, ...] = (
    Part("glance", sections.glance_part, S),
    Part("glance", sections.metric_glance_part, M),
    Part("answer", sections.answer_part, S),
    Part("answer", sections.metric_answer_part, M),
    Part("twins", sections.twins_part, S),
    Part("two_stage", sections.two_stage_part, S),
    Part("each_condition", sections.each_condition_part, S),
    Part("settings", sections.settings_part, S),
    Part("values", sections.metric_values_part, M),
    Part("values", sections.values_part, S),
    Part("test_noise", sections.test_noise_part, S),
    Part("mode_gaps", sections.mode_gaps_part, S),
    Part("degenerate", sections.degenerate_part, S),
    Part("variance", sections.variance_part, S),
    Part("splits", sections.splits_part, S),
    Part("flips", sections.flips_part, S),
    Part("sources", sections.sources_part, S),
    Part("comparisons", sections.comparisons_part, S),
    Part("comparisons", sections.metric_comparisons_part, M),
    Part("history", sections.history_part, S),
    Part("history", sections.metric_history_part, M),
    Part("maps", sections.maps_part, S),
    Part("left_out", sections.left_out_part, S),
    Part("left_out", sections.metric_left_out_part, M),
    Part("claims", sections.claims_part),
)


def of_study(study: StudyRuns, claims: Sequence[tuple[str, float]] = ()) -> Tables:
    """A study's tables, computed on first use from its finished runs' reference runs."""
    ref = reference_runs(study.finished)
    return Tables(
        STUDY,
        TABLES,
        study=study,
        finished=study.finished,
        ref=ref,
        samples=tables.samples_of(ref),
        mode=EVAL,
        metric=conditions.ACCURACY,
        claimed=tuple(claims),
        target_diff=None,
        half_width=None,
    )


def metric_of(runs: MetricRuns) -> conditions.Metric:
    """How a metric reads in sentences: its own name and units, and which way is better."""
    return conditions.Metric(
        name=runs.metric,
        unit="",
        diff_unit="",
        lower_is_better=runs.lower_is_better,
        bounds=runs.bounds,
        power_diffs=(),
        power_unit="",
        label=runs.metric,
        axis=runs.metric,
    )


def of_metric(
    runs: MetricRuns,
    *,
    claims: Sequence[tuple[str, float]] = (),
    half_width: float | None = None,
    diff: float | None = None,
) -> Tables:
    """A metric's tables, one value per run. `half_width`: Stein's seeds for a 95% interval that narrow
    (default: half of each interval's present width); `diff`: the difference the power table sizes for
    (default: the closest pair's)."""
    return Tables(
        METRIC,
        TABLES,
        metric_runs=runs,
        samples=runs.cells(),
        mode=runs.metric,
        metric=metric_of(runs),
        degenerate_conditions=[],
        twin_conditions=[],
        claimed=tuple(claims),
        target_diff=diff,
        half_width=half_width,
    )


def build_sections(t: Tables) -> list[Section]:
    """The report's sections in reading order, with every table and figure that applies."""
    return assemble(t, PARTS)
