"""The report of a metric for runs seedvar did not train: the parts of a study's report that apply to one
value per run. The answer (what the seeds tell apart, the groups, the ranking, the closest pair and the
seeds it needs, Stein's seeds for a narrower interval), the table of conditions, the Holm-corrected
comparisons, power, the values per condition and the metric's history. The intervals and tests are the
study report's own (analysis.compare, seedvar.stats).
"""

from __future__ import annotations

import pandas as pd

from seedvar.analysis import conditions, figures, glance
from seedvar.analysis.foreign import MetricRuns
from seedvar.analysis.render import Section
from seedvar.stats.interval import ALPHA
from seedvar.stats.power import POWER, REACHED, Spread

DIGITS = 4  # significant digits on the page (the CSVs keep every digit)
NO_PREDICTIONS = (
    "Left out, because these runs logged a metric and not seedvar's predictions: the test modes (eval, train, "
    "MC dropout), prediction flips and churn, the test set's share of the spread and classification maps."
)


def metric_of(runs: MetricRuns) -> conditions.Metric:
    """How the metric reads in sentences: its own name and units, and which way is better."""
    return conditions.Metric(
        name=runs.metric, unit="", diff_unit="", lower_is_better=runs.lower_is_better, bounds=None
    )


def build_sections(
    runs: MetricRuns, *, half_width: float | None = None, diff: float | None = None
) -> list[Section]:
    """The report's sections in reading order. `half_width`: Stein's seeds for a 95% interval that narrow
    (default: half of each interval's present width); `diff`: the difference the power table sizes for
    (default: the closest pair's)."""
    metric = metric_of(runs)
    samples = runs.samples
    step = runs.resolution  # inferred from every value: once
    grid = dict.fromkeys(samples, step)
    comps = conditions.comparisons(samples, grid)
    table = conditions.summary(samples, comps, metric, resolution=grid)
    spread = conditions.spread_of(samples, grid)
    answer = [intro(runs, table)]
    if len(table) > 1:
        answer += conditions.verdict(table, comps, metric, spread=spread)
    else:
        answer.append(alone(table.iloc[0], metric))
    singles = list(table.loc[table["runs"] < 2, "condition"])
    if singles:
        answer.append(
            f"{conditions.join_names(singles)} {'has' if len(singles) == 1 else 'have'} one run: reported without an "
            "interval or a comparison (a spread needs two)."
        )
    answer += [t for t in [conditions.stein_sentence(table, metric, half_width)] if t]
    if step > 0:
        answer.append(
            f"Each condition's std is at least the {runs.resolution_source} / sqrt(12): seeds that tie still "
            "have a spread, so tied conditions are ranked and compared (`--resolution R` sets it)."
        )
    answer.append(NO_PREDICTIONS)
    headline, bullets = glance.metric_answer(table, comps, metric)
    sections = [
        Section(
            "At a glance",
            headline=headline,
            bullets=bullets,
            figures={
                "values": figures.metric_distribution(runs.table, runs.metric, list(table["condition"]))
            },
        ),
        Section(
            "The answer",
            text=answer,
            tables={"conditions": table},
            tables_first=True,
            whole=True,
            answer=True,
        ),
        Section(
            "Values per condition",
            text=[
                f"In the figure at the top, each point is one run's {runs.metric}; the box spans its "
                "condition's runs. The 95% CI of a condition's mean is Student's t-interval over its runs "
                "(coverage checked by simulation: see the README's table)."
            ],
        ),
        comparison_section(spread, comps, table, diff, runs.metric),
    ]
    if not runs.histories.empty:
        sections.append(
            Section(
                f"{runs.metric} over steps",
                text=[f"Mean ± 1 sd of {runs.metric} at each logged step over each condition's runs."],
                figures={"history": figures.metric_history(runs.histories, runs.metric)},
            )
        )
    for sec in sections:
        sec.digits = DIGITS
    sections.append(
        Section(
            "Runs left out",
            text=[
                f"{len(runs.left_out)} run(s) left out: not finished, or no value of {runs.metric}."
                if len(runs.left_out)
                else "None: every run finished with a value."
            ],
            tables={"left_out": runs.left_out} if len(runs.left_out) else {},
        )
    )
    return sections


def intro(runs: MetricRuns, table: pd.DataFrame) -> str:
    left = len(runs.left_out)
    reasons = runs.left_out["reason"].value_counts() if left else pd.Series(dtype=int)
    why = "; ".join(f"{n} {r}" for r, n in reasons.items())
    return (
        f"{runs.source}: {len(runs.table)} finished run(s) with a value of {runs.metric} in {len(table)} "
        f"condition(s){f', {left} left out ({why})' if left else ''}. {runs.chosen} "
        + ("Lower is better." if runs.lower_is_better else "Higher is better.")
    )


def alone(row: pd.Series, metric: conditions.Metric) -> str:
    """One condition: its spread alone."""
    if row["runs"] < 2:
        return f"{row['condition']}: {metric.name} {metric.value(row['mean'])} from its one run."
    return (
        f"{row['condition']}: {metric.name} {metric.value(row['mean'])} on average over {int(row['runs'])} runs "
        f"(std {row['std']:.3g}; 95% CI of the mean {row['ci_low']:.4g} to {row['ci_high']:.4g})."
    )


def comparison_section(
    spread: Spread, comps: pd.DataFrame, table: pd.DataFrame, diff: float | None, metric: str
) -> Section:
    sec = Section("Comparisons and power")
    if comps.empty:
        sec.text.append("Comparisons need at least two conditions with 2+ runs each.")
        return sec
    sec.tables["comparisons"] = comps
    sec.text.append(
        "Welch's t-test of each pair's difference of means, with its 95% t-interval and Holm-adjusted p-values "
        "over all pairs; P(A > B) is the probability that a run of A scores above one of B (an effect size), "
        "under normal seeds of equal spread, with its exact 95% interval (noncentral t)."
    )
    compared = {*comps["a"], *comps["b"]}
    d, pv = conditions.matrices(comps, [c for c in table["condition"] if c in compared])
    sec.figures["comparison_matrix"] = figures.comparison_matrix(d, pv, what=metric, unit=metric)
    size = diff if diff else float(comps["diff"].abs().min())
    if size > 0:
        sec.tables["power"] = conditions.power_table(spread, [size])
        sec.text.append(
            f"Runs per condition needed to tell apart a difference of {size:.3g} from a condition of the same "
            f"spread ({POWER:.0%} power, two-sided at {ALPHA:g}), sized at {spread.how()}; sized this way the n reaches {POWER:.0%} "
            f"power in {REACHED} of simulated studies"
            + ("." if diff else ". The difference is the closest pair's; choose another with --target-diff.")
        )
    return sec
