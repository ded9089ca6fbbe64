"""Variance reports for runs seedvar did not train: an experiment written by plain MLflow (scikit-learn
classifiers on the digits that ship with scikit-learn, several seeds each, one FAILED run and one run
without the metric), and the same runs exported to a CSV file."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier
from statsmodels.stats.multitest import multipletests

import seedvar
from seedvar.cli import main

SEEDS = 5
MODELS = {
    "logreg": lambda seed: LogisticRegression(max_iter=1000, random_state=seed),
    "tree": lambda seed: DecisionTreeClassifier(random_state=seed),
    "bayes": lambda seed: GaussianNB(),  # no seed of its own: only the split moves it
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory, new_store) -> dict[str, object]:
    """The experiment as a user's own script logs it: params `model` and `seed`, metric `test_accuracy`
    (the test loss at 3 steps too); one run FAILED, one that never logged the metric."""
    folder = tmp_path_factory.mktemp("digits") / "mlruns"
    uri = new_store(folder)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("digits", artifact_location=(folder / "artifacts").as_uri())
    x, y = load_digits(return_X_y=True)
    truth: dict[str, list[float]] = {}
    for name, make in MODELS.items():
        for seed in range(SEEDS):
            with mlflow.start_run(experiment_id=exp, run_name=f"{name}-{seed}"):
                mlflow.log_params({"model": name, "seed": seed, "n_features": 64})
                xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
                fitted = make(seed).fit(xtr, ytr)
                accuracy = float(fitted.score(xte, yte))
                for step in range(3):
                    mlflow.log_metric("test_loss", 1.0 - accuracy + 0.1 * (2 - step), step=step)
                mlflow.log_metric("test_accuracy", accuracy)
                truth.setdefault(name, []).append(accuracy)
    with mlflow.start_run(experiment_id=exp, run_name="tree-crashed"):
        mlflow.log_params({"model": "tree", "seed": 90, "n_features": 64})
        mlflow.log_metric("test_accuracy", 0.01)  # logged before the crash: a failed run is left out anyway
        mlflow.end_run("FAILED")
    with mlflow.start_run(experiment_id=exp, run_name="logreg-unfinished-metric"):
        mlflow.log_params({"model": "logreg", "seed": 91, "n_features": 64})
    mlflow.set_tracking_uri(None)
    return {"uri": uri, "truth": truth}


def expected_table(truth: dict[str, list[float]]) -> pd.DataFrame:
    """Means and 95% t-intervals worked by hand; letters from Holm-corrected Welch tests."""
    rows = {}
    for name, values in truth.items():
        x = np.array(values)
        half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
        rows[name] = (x.mean(), x.mean() - half, x.mean() + half)
    return pd.DataFrame(rows, index=["mean", "ci_low", "ci_high"]).T


def holm_apart(truth: dict[str, list[float]]) -> set[frozenset[str]]:
    pairs = list(itertools.combinations(truth, 2))
    p = [stats.ttest_ind(truth[a], truth[b], equal_var=False).pvalue for a, b in pairs]
    reject = multipletests(p, method="holm")[0]
    return {frozenset(pair) for pair, r in zip(pairs, reject, strict=True) if r}


def check(table: pd.DataFrame, truth: dict[str, list[float]]) -> None:
    got = table.set_index("condition")
    want = expected_table(truth)
    assert set(got.index) == set(truth)
    assert (got["runs"] == SEEDS).all()
    for col in ("mean", "ci_low", "ci_high"):
        assert got.loc[want.index, col].to_numpy() == pytest.approx(want[col].to_numpy(), rel=1e-12)
    assert list(table["condition"]) == list(want["mean"].sort_values(ascending=False).index)  # best first
    apart = holm_apart(truth)
    for a, b in itertools.combinations(truth, 2):
        share = bool(set(got.loc[a, "group"]) & set(got.loc[b, "group"]))
        assert share == (frozenset((a, b)) not in apart), (a, b)


@pytest.mark.slow
def test_a_plain_mlflow_experiment_gets_its_report(digits, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["report", "--experiment", "digits", "--metric", "test_accuracy", "--by", "model"]
    assert main([*args, "--tracking-uri", digits["uri"], "--out", str(out)]) == 0
    assert "report written to" in capsys.readouterr().out
    table = pd.read_csv(out / "tables" / "conditions.csv")
    assert list(table.columns[:7]) == ["condition", "runs", "mean", "std", "ci_low", "ci_high", "group"]
    check(table, digits["truth"])
    md = (out / "report.md").read_text()
    assert "15 finished run(s) with a value of test_accuracy in 3 condition(s), 2 left out" in md
    assert "1 failed, not finished" in md and "1 never logged test_accuracy" in md
    assert "Conditions are the values of model (as asked with --by)" in md
    assert "test modes (eval, train, MC dropout), prediction flips" in md  # what cannot apply, said once
    left = pd.read_csv(out / "tables" / "left_out.csv")
    assert sorted(left["run"]) == ["logreg-unfinished-metric", "tree-crashed"]
    assert {p.stem for p in (out / "figures").glob("*.png")} >= {"values", "comparison_matrix"}
    assert "no runs" not in md


@pytest.mark.slow
def test_without_by_the_varying_params_are_the_conditions_and_losses_rank_lowest_first(digits, tmp_path):
    rep = seedvar.report(
        "digits", tmp_path / "loss", metric="test_loss", lower_is_better=True, tracking_uri=digits["uri"]
    )
    text = " ".join(rep.answer)
    assert (
        "Conditions are the values of model, the params that vary across the finished runs (seed params left out: seed)"
        in text
    )
    assert "Lower is better." in text
    table = rep.tables["conditions"]
    assert table["mean"].is_monotonic_increasing  # best (lowest loss) first
    assert (tmp_path / "loss" / "figures" / "history.png").exists()  # logged at 3 steps: bands over steps
    frame = seedvar.runs("digits", digits["uri"], metric="test_accuracy")
    assert len(frame) == 15 and {"run", "condition", "seed", "test_accuracy", "model"} <= set(frame.columns)


@pytest.mark.slow
def test_the_same_report_from_a_csv_export_and_from_a_dataframe(digits, tmp_path):
    mlflow.set_tracking_uri(digits["uri"])
    try:
        exported = mlflow.search_runs(experiment_names=["digits"])  # as a user exports a results table
    finally:
        mlflow.set_tracking_uri(None)
    table = exported.rename(
        columns={"params.model": "model", "params.seed": "seed", "metrics.test_accuracy": "acc"}
    )
    table = table.rename(columns={"tags.mlflow.runName": "run"})[["run", "status", "model", "seed", "acc"]]
    path = tmp_path / "results.csv"
    table.to_csv(path, index=False)
    assert (
        main(
            ["report", "--csv", str(path), "--metric", "acc", "--by", "model", "--out", str(tmp_path / "csv")]
        )
        == 0
    )
    check(pd.read_csv(tmp_path / "csv" / "tables" / "conditions.csv"), digits["truth"])
    rep = seedvar.report(table, metric="acc", by="model")
    check(rep.tables["conditions"], digits["truth"])


def run_report(args: list[str], capsys) -> tuple[int, str]:
    code = main(["report", *args])
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(digits, tmp_path, capsys):
    uri = ["--tracking-uri", digits["uri"], "--out", str(tmp_path / "r")]
    code, err = run_report(["--experiment", "digits", "--metric", "accuracy", *uri], capsys)
    assert code == 2 and "its runs log: test_accuracy, test_loss" in err and err.count("\n") == 1
    code, err = run_report(
        ["--experiment", "digits", "--metric", "test_accuracy", "--by", "depth", *uri], capsys
    )
    assert code == 2 and "--by depth: no such param" in err and "they have: model, n_features, seed" in err
    code, err = run_report(["--experiment", "digits", *uri], capsys)
    assert code == 2 and "seedvar did not train: name the metric to report with --metric" in err
    path = tmp_path / "t.csv"
    pd.DataFrame({"model": ["a", "a", "b"], "acc": ["high", "low", "mid"]}).to_csv(path, index=False)
    code, err = run_report(["--csv", str(path), "--metric", "acc"], capsys)
    assert code == 2 and "not numbers" in err
    code, err = run_report(["--csv", str(path), "--metric", "score"], capsys)
    assert code == 2 and "has no such column; its columns: model, acc" in err
    code, err = run_report(["--csv", str(tmp_path / "none.csv"), "--metric", "acc"], capsys)
    assert code == 2 and "no such file" in err
    code, err = run_report(["--csv", str(path)], capsys)
    assert code == 2 and "--metric" in err
    assert not (tmp_path / "r").exists()  # nothing written for a report that could not be made


def test_one_condition_and_a_condition_with_one_run_are_reported_and_said(tmp_path):
    one = pd.DataFrame({"seed": range(4), "acc": [0.91, 0.93, 0.92, 0.95]})
    rep = seedvar.report(one, metric="acc")
    text = " ".join(rep.answer)
    assert "are one condition" in text and "on average over 4 runs" in text and "95% CI of the mean" in text
    mixed = pd.DataFrame({"model": ["a", "a", "a", "b"], "seed": [0, 1, 2, 0], "acc": [0.9, 0.92, 0.91, 0.8]})
    rep = seedvar.report(mixed, metric="acc", by=["model"])
    table = rep.tables["conditions"].set_index("condition")
    assert table.loc["b", "runs"] == 1 and np.isnan(table.loc["b", "ci_low"])
    assert "b has one run: reported without an interval or a comparison" in " ".join(rep.answer)
    two = pd.DataFrame(
        {
            "model": ["a"] * 4 + ["b"] * 4,
            "seed": [*range(4)] * 2,
            "acc": [0.91, 0.93, 0.92, 0.95, 0.8, 0.82, 0.81, 0.83],
        }
    )
    rep = seedvar.report(two, metric="acc", by="model")  # the page's first screen, as data
    assert rep.headline == "2 conditions, 4 runs each: a is best (acc 0.9275); the runs tell the two apart."
    label, value, table = rep.glance[0]
    best = rep.tables["conditions"].set_index("condition").loc["a"]
    assert (label, table) == (
        "best, a",
        "conditions",
    ) and f"95% CI {best['ci_low']:.4g} to {best['ci_high']:.4g}" in value


def test_nested_runs_count_their_children(store_uri):
    uri = store_uri
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("nested")
    for model, shift in (("a", 0.0), ("b", 0.05)):
        parent = client.create_run(exp, run_name=f"sweep-{model}")
        client.log_param(parent.info.run_id, "model", model)
        client.log_metric(parent.info.run_id, "acc", 0.5)  # a parent's summary, not a replicate
        for seed in range(3):
            child = client.create_run(exp, tags={"mlflow.parentRunId": parent.info.run_id})
            client.log_batch(
                child.info.run_id,
                params=[mlflow.entities.Param("model", model), mlflow.entities.Param("seed", str(seed))],
            )
            client.log_metric(child.info.run_id, "acc", 0.8 + shift + 0.01 * seed)
            client.set_terminated(child.info.run_id)
        client.set_terminated(parent.info.run_id)
    table = seedvar.report("nested", metric="acc", by="model", tracking_uri=uri).tables["conditions"]
    assert table.set_index("condition")["runs"].to_dict() == {"a": 3, "b": 3}
    assert table.set_index("condition").loc["a", "mean"] == pytest.approx(0.81)


@pytest.mark.slow
def test_the_report_reads_a_metric_in_bulk(digits, monkeypatch):
    """What the report needs of each run, read in three queries from a database store and from the pages of
    searches over start-time slices where there is no database (a tracking server): the same runs, values
    and params as MLflow's own search, in its order, however many slices."""
    from seedvar.record import bulk
    from seedvar.record.store import Store

    store = Store(digits["uri"], create=False)
    exp = store.experiment_id("digits", create=False)
    queried = bulk.read_metric(store, exp, "test_accuracy")
    paged = bulk._read_pages(store, exp, "test_accuracy")
    assert queried.metric_names == paged.metric_names == {"test_accuracy", "test_loss"}
    for read in (queried, paged):
        found = {r.run_id: r for r in read.runs}
        for run in mlflow.MlflowClient(digits["uri"]).search_runs([exp]):
            mine = found[run.info.run_id]
            assert mine.params == run.data.params and mine.status == run.info.status
            assert mine.value == run.data.metrics.get("test_accuracy") and mine.name == run.info.run_name
    assert {r.step for r in queried.runs} == {0} and {r.step for r in paged.runs} == {-1}
    one_search = [r.info.run_id for r in mlflow.MlflowClient(digits["uri"]).search_runs([exp])]
    assert len(one_search) == len(MODELS) * SEEDS + 2
    for slices in (1, 3, 40):  # 40: slices of a few milliseconds, several of them empty
        monkeypatch.setattr(bulk, "SLICES", slices)
        assert [r.run_id for r in bulk._read_pages(store, exp, "test_accuracy").runs] == one_search


def test_tied_seeds_near_100_are_ranked_compared_and_sized(tmp_path, capsys):
    """Issue 34's bar: a condition at exactly 99.60% and one at exactly 100% on every seed are lettered, with
    an interval of nonzero width and a finite Holm p, not flagged; a one-run condition has no letter; the
    power table has one row per condition and a column for the closest pair's difference; a header-only
    CSV and an empty metric column are one line, exit 2."""
    rows = [("full", s, 100.0) for s in (1, 2, 3)] + [("tied", s, 99.6) for s in (1, 2, 3)]
    rows += [("spread", 1, 99.2), ("spread", 2, 99.0), ("spread", 3, 99.4), ("alone", 1, 98.0)]
    csv = tmp_path / "hsi.csv"
    pd.DataFrame(rows, columns=["model", "seed", "acc"]).to_csv(csv, index=False)
    out = tmp_path / "rep"
    assert main(["report", "--csv", str(csv), "--metric", "acc", "--by", "model", "--out", str(out)]) == 0
    cond = pd.read_csv(out / "tables" / "conditions.csv").set_index("condition")
    for name in ("full", "tied"):
        assert isinstance(cond.loc[name, "group"], str) and cond.loc[name, "group"].isalpha()
        assert cond.loc[name, "ci_high"] - cond.loc[name, "ci_low"] > 0
    assert cond.loc["alone", "group"] == "–"
    comps = pd.read_csv(out / "tables" / "comparisons.csv")
    pair = comps[(comps["a"] == "full") & (comps["b"] == "tied")].iloc[0]
    assert np.isfinite(pair["welch_p_holm"]) and pair["welch_p_holm"] < 0.05
    assert pair["p_a_gt_b_ci_low"] < pair["p_a_gt_b_ci_high"]
    assert "degenerate" not in (out / "report.md").read_text().lower()
    assert "inferred from the values' decimals" in (out / "report.md").read_text()
    power = pd.read_csv(out / "tables" / "power.csv")
    assert sorted(power["condition"]) == ["full", "spread", "tied"]
    assert [c for c in power.columns if c.startswith("replicates_for_")]
    capsys.readouterr()
    pd.DataFrame(columns=["model", "seed", "acc"]).to_csv(tmp_path / "header.csv", index=False)
    pd.DataFrame({"model": ["a", "b"], "seed": [1, 2], "acc": [None, None]}).to_csv(
        tmp_path / "nan.csv", index=False
    )
    for bad in ("header.csv", "nan.csv"):
        code = main(
            ["report", "--csv", str(tmp_path / bad), "--metric", "acc", "--by", "model", "--out", str(out)]
        )
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and bad in err


# In a fresh process: `seedvar --help`, then a CSV's report, then which heavy packages each had loaded.
STARTUP = """
import json, sys
from seedvar.cli import main

def loaded(*names):
    return sorted(m for m in sys.modules if m.split(".")[0] in names)

try:
    main(["--help"])
except SystemExit:
    pass
helped = loaded("scipy", "mlflow", "sqlalchemy", "torch")
code = main(["report", "--csv", sys.argv[1], "--metric", "acc", "--by", "model", "--out", sys.argv[2]])
print(json.dumps({"help": helped, "code": code, "report": loaded("mlflow", "sqlalchemy", "torch")}))
"""


@pytest.mark.slow
def test_help_and_a_csv_report_start_without_the_store_libraries(tmp_path):
    """A CSV never needs MLflow's tracking store nor SQLAlchemy (seconds of imports), and `seedvar --help`
    no science library: they load where a store is read and a sweep runs (benchmarks/startup.py times it)."""
    table = tmp_path / "results.csv"
    rows = [("a", 0, 0.81), ("a", 1, 0.83), ("a", 2, 0.82), ("b", 0, 0.86), ("b", 1, 0.88), ("b", 2, 0.87)]
    pd.DataFrame(rows, columns=["model", "seed", "acc"]).to_csv(table, index=False)
    proc = subprocess.run(
        [sys.executable, "-c", STARTUP, str(table), str(tmp_path / "report")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found == {"help": [], "code": 0, "report": []}
    assert (tmp_path / "report" / "index.html").is_file()


def test_bounds_keep_a_metric_interval_inside_its_range(tmp_path, capsys):
    """An accuracy logged as a fraction near 1: unknown bounds let its interval pass 1; --bounds 0,1 keeps
    it inside (and widens it to the count interval near the bound); a value outside is one line, exit 2."""
    near = pd.DataFrame(
        {"model": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2, "acc": [0.998, 1.0, 1.0, 0.99, 0.992, 0.994]}
    )
    free = seedvar.report(near, metric="acc", by="model").tables["conditions"].set_index("condition")
    assert free.loc["a", "ci_high"] > 1.0
    kept = seedvar.report(near, metric="acc", by="model", bounds=(0, 1))
    table = kept.tables["conditions"].set_index("condition")
    assert table.loc["a", "ci_high"] == 1.0 and table.loc["a", "ci_low"] <= free.loc["a", "ci_low"]
    assert "keeps to acc's range, 0 to 1 (--bounds)" in " ".join(kept.answer)
    path = tmp_path / "near.csv"
    near.to_csv(path, index=False)
    args = ["report", "--csv", str(path), "--metric", "acc", "--out", str(tmp_path / "r")]
    assert main([*args, "--bounds", "0,1"]) == 0
    assert pd.read_csv(tmp_path / "r" / "tables" / "conditions.csv")["ci_high"].max() <= 1.0
    for bad, said in (
        ("0,0.995", "3 value(s) of acc lie outside, e.g. 0.998"),
        ("1,0", "LO must be below HI"),
        ("x", "write LO,HI"),
    ):
        code, err = run_report(
            ["--csv", str(path), "--metric", "acc", "--bounds", bad, "--out", str(tmp_path / "x")], capsys
        )
        assert code == 2 and said in err and err.count("\n") == 1, (bad, err)
    assert not (tmp_path / "x").exists()
