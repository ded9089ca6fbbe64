"""Every interval and test a report prints, checked by simulation with known truth at 3, 5, 10 and 30 seeds
(benchmarks/coverage.py: the same checks, with more simulated studies, print the README's table).

A check passes when its simulated rate is consistent with its stated range: within it up to 2.5 Monte
Carlo standard errors (fixed seeds, so a run is repeatable). What the earlier methods gave fails here: a
BCa bootstrap of the mean covered 71% at 3 seeds, the plain t-interval on a 500-sample grid 86%.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import load_benchmark
from scipy import stats

from seedvar.analysis import registry, sentences
from seedvar.analysis.load import LoadedRun, StudyRuns
from seedvar.results import Predictions

pytestmark = pytest.mark.slow  # thousands of simulated studies per check: minutes

coverage = load_benchmark("coverage.py")
CHEAP = 2000  # simulated studies per cell for the checks that cost well under a millisecond each
COSTLY = 400  # ... and for the others (variance components, test-set noise, power)
CHEAP_CHECKS = ("mean accuracy", "source variance", "difference", "Welch test", "at chance", "Stein")


HARD_CASES = (
    "near 100%: 0",
    "10% of seeds",
    "vary by half",
    "Brown-Forsythe",
    "tied",
    "P(A>B)",
    "8 conditions",
)


def reps(check: coverage.Check) -> int:
    if check.name.startswith("Holm") or "8 conditions" in check.name:
        return 200  # 28 pairs a study: a family-wise rate near 0.03 is known to +-0.012 here
    if any(k in check.name for k in HARD_CASES):
        return COSTLY  # the hard regimes (issue 34): each a few seconds at 400 studies a cell
    return CHEAP if check.name.startswith(CHEAP_CHECKS) else COSTLY


@pytest.mark.parametrize("check", coverage.CHECKS, ids=[c.name for c in coverage.CHECKS])
def test_each_printed_number_holds_its_stated_rate(check):
    n_reps = reps(check)
    lo, hi = check.bounds
    rng = np.random.default_rng([7, coverage.CHECKS.index(check)])
    for n in check.seeds:
        rate = check.run(n, n_reps, rng)
        se = math.sqrt(max(rate * (1 - rate), 0.01 * 0.99) / n_reps)
        assert lo - 2.5 * se <= rate <= hi + 2.5 * se, (
            f"{check.name} at {n} seeds: {rate:.3f} not in {lo}-{hi}"
        )


def test_the_readme_table_lists_every_check():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## How seedvar's numbers are checked", 1)[1].split("\n## ", 1)[0]
    for check in coverage.CHECKS:
        assert f"| {check.name} |" in section, check.name


def _run(condition: str, replicate: int, accuracy: float, samples: int = 10_000) -> LoadedRun:
    """A trained model whose eval passes score `accuracy` (points) on `samples` test samples."""
    labels = (np.arange(samples) % 2).astype(np.int16)  # two classes: chance is 50%
    right = int(round(accuracy / 100 * samples))
    preds = np.tile(1 - labels, (2, 1)).astype(np.int8)
    preds[:, :right] = labels[:right]
    return LoadedRun(
        run_id=f"{condition}-{replicate}",
        name=f"{condition}-r{replicate:02d}",
        status="FINISHED",
        model=condition,
        deterministic=True,
        varied="all",
        replicate=replicate,
        config_hash=f"{condition}-{replicate}",
        predictions=Predictions(
            labels=labels,
            passes={"eval": preds},
            pass_seeds={"eval": np.arange(2)},
            ids=np.arange(samples),
            class_names=["right", "wrong"],
        ),
    )


def test_many_conditions_at_three_seeds_cover_as_t_intervals_do_and_a_stable_one_is_reported():
    """25 conditions x 3 seeds at a 1-point std and one at a 0.05-point std, accuracies drawn from known
    normal distributions: the report's eval intervals are the t-intervals of the same data (so they cover
    the true means exactly as often), and the stable condition, whose power once crashed the report,
    gets its row, its seeds needed and its sentence."""
    rng = np.random.default_rng(27)
    truth = {f"m{i:02d}": 60 + 1.5 * i for i in range(25)}
    truth["stable"] = 99.0
    runs = []
    for cond, mu in truth.items():
        sd = 0.05 if cond == "stable" else 1.0
        runs += [_run(cond, r, float(v)) for r, v in enumerate(rng.normal(mu, sd, 3))]
    t = registry.of_study(StudyRuns("many", runs, sweeps=1))
    acc = t.accuracy.set_index("condition")
    ours = theirs = 0
    for cond, mu in truth.items():
        x = np.array([r.accuracy("eval").mean() for r in runs if r.model == cond])
        low, high = stats.t.interval(0.95, 2, loc=x.mean(), scale=x.std(ddof=1) / math.sqrt(3))
        assert (acc.loc[cond, "ci_low"], acc.loc[cond, "ci_high"]) == pytest.approx((low, high), abs=1e-6)
        ours += acc.loc[cond, "ci_low"] <= mu <= acc.loc[cond, "ci_high"]
        theirs += low <= mu <= high
    assert ours == theirs >= 20
    power = t.power.set_index("condition")
    # one std pooled over the 26 conditions (Bartlett finds them compatible): every row is sized alike, the
    # stable condition's included, and the table says how it was sized
    assert power.loc["stable", "replicates_for_1_point"] == power.loc["m00", "replicates_for_1_point"] > 2
    assert "pooled over the 26 conditions" in power.loc["stable", "sized_at"]
    assert "stable" in set(t.conditions["condition"]) and t.conditions["group"].str.len().min() >= 1
    text = " ".join(sentences.answer(t))
    assert "26 conditions, 3 seeds each" in text and re.search(r"stable \(?99\.\d\d%", text)
