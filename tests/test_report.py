"""End to end: a small sweep, `seedvar report`, the HTML parsed and checked against MLflow directly;
and `seedvar ui` serving the same store over its REST API."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import signal
import subprocess
import sys
import urllib.request
from html.parser import HTMLParser

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SCENE
from ui_process import Server, free_port

import seedvar
from seedvar.cli import main
from seedvar.errors import UserError
from seedvar.plan import parse_study
from seedvar.record import schema
from seedvar.serving.ui import serve_ui

pytestmark = pytest.mark.slow  # sweeps and whole reports: seconds each

HSI = {**TINY_SCENE, "height": 32, "width": 32}


def make_study(name: str, deterministic: bool | str = "both", **seeds) -> object:
    return parse_study(
        {
            "name": name,
            "device": "cpu",
            "models": ["hybridsn"],
            "dataset": HSI,
            "deterministic": deterministic,
            "train": {"epochs": 3, "batch_size": 32},
            "seeds": {"replicates": 3, **seeds},
            "test": {"passes": 5},
        }
    )


class Page(HTMLParser):
    """Collects what a reader of index.html sees: the answer, table ids and their text, figures."""

    def __init__(self) -> None:
        super().__init__()
        self.answer, self.paragraphs, self.tables, self.images, self._in = [], [], {}, [], None
        self.figure = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "p":
            self._in = "answer" if attrs.get("class") == "answer" else "p"
        elif tag == "div" and attrs.get("id", "").startswith("table-"):
            self._in = attrs["id"][len("table-") :]
            self.tables[self._in] = ""
        elif tag == "figure":
            self.figure = attrs.get("id", "").removeprefix("figure-")
        elif tag == "img":
            self.images.append((self.figure, attrs.get("alt"), attrs.get("src", "")))

    def handle_endtag(self, tag):
        if tag in ("p", "div"):
            self._in = None

    def handle_data(self, data):
        if self._in in ("answer", "p"):
            self.paragraphs.append(data)
        if self._in == "answer":
            self.answer.append(data)
        elif self._in == "p":
            pass
        elif self._in:
            self.tables[self._in] += data + " "


@pytest.fixture(scope="module")
def swept(tmp_path_factory, swept_store):
    root = tmp_path_factory.mktemp("report")
    uri, _ = swept_store(make_study("e2e"), root / "mlruns")
    return uri, root


def test_report_html_holds_the_answer_tables_and_figures_matching_mlflow(swept):
    uri, root = swept
    out = root / "out"
    assert main(["report", "--experiment", "e2e", "--tracking-uri", uri, "--out", str(out)]) == 0
    page = Page()
    page.feed((out / "index.html").read_text())
    answer = " ".join(page.answer)
    words = " ".join(page.paragraphs)  # the answer, then each condition's paragraph
    tables = {p.stem for p in (out / "tables").glob("*.csv")}
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert tables >= {
        "conditions",
        "settings",
        "accuracy",
        "variance_components",
        "flip_rates",
        "twins",
        "power",
    }
    assert figures >= {
        "accuracy_distribution",
        "variance_components",
        "flip_rates",
        "training_curves",
        "classification_maps",
        "intervals",
    }
    assert "comparisons" not in tables  # hybridsn (nondet) is a twin of hybridsn: not ranked against it
    assert set(page.tables) == tables
    embedded = {
        name for name, _, src in page.images if src.startswith("data:image/png;base64,") and len(src) > 1000
    }
    assert embedded == figures  # every figure is inside the page, none is a link
    alts = {name: alt for name, alt, _ in page.images}
    assert (
        "test accuracy" in alts["accuracy_distribution"]
        and "legend: eval, train, mc_dropout" in alts["intervals"]
    )
    assert (out / "report.md").read_text().count("## ") >= 7

    # the same folder, logged to the latest sweep run: it opens from the MLflow UI's artifact view
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("e2e")
    sweep = client.search_runs(
        [exp.experiment_id],
        schema.tag_filter(schema.TAG_KIND, schema.KIND_SWEEP),
        order_by=["attributes.start_time DESC"],
    )[0]
    logged = {a.path for a in client.list_artifacts(sweep.info.run_id, schema.ARTIFACT_REPORT)}
    assert {"report/index.html", "report/report.md", "report/tables", "report/figures"} <= logged
    figures_logged = client.list_artifacts(sweep.info.run_id, "report/figures")
    assert {f"report/figures/{f}.png" for f in figures} == {a.path for a in figures_logged}

    # the numbers, recomputed from mlflow.search_runs and the metric histories directly
    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs(
        experiment_names=["e2e"], filter_string=schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN)
    )
    det = df[df[f"tags.{schema.TAG_DETERMINISTIC}"] == "true"]
    eval_acc = 100 * det["metrics.test.eval.acc_mean"].to_numpy()
    train_passes = np.concatenate(
        [[100 * m.value for m in client.get_metric_history(rid, "test.train.acc")] for rid in det["run_id"]]
    )
    acc = pd.read_csv(out / "tables" / "accuracy.csv").set_index(["condition", "mode"])
    assert acc.loc[("hybridsn", "eval"), "mean"] == pytest.approx(eval_acc.mean(), abs=1e-9)
    assert acc.loc[("hybridsn", "eval"), "seed_std"] == pytest.approx(eval_acc.std(ddof=1), abs=1e-9)
    assert acc.loc[("hybridsn", "train"), "std"] == pytest.approx(train_passes.std(ddof=1), abs=1e-9)
    assert acc.loc[("hybridsn", "train"), "passes"] == 15
    # deterministic kernels or not: twins, said first
    assert answer.startswith(
        "deterministic=false (twins of hybridsn, deterministic=true, same seeds): 3 of 3 twins bit-identical on cpu"
    )
    assert "2 conditions, 3 seeds each: eval accuracy" in answer
    twins = pd.read_csv(out / "tables" / "twins.csv")
    assert twins[["pairs", "identical_weights", "churn"]].values.tolist() == [[3, 3, 0.0]]
    assert "In eval mode every trained model gives identical results on every pass." in answer
    assert f"{eval_acc.mean():.2f}" in page.tables["conditions"]
    sentence = f"Train-mode test accuracy of hybridsn varies by {train_passes.std(ddof=1):.2f} points"
    assert sentence in words and sentence not in answer
    assert f"across seeds they vary by {eval_acc.std(ddof=1):.2f} points" in words
    assert "In eval mode the same 3 models give identical results on every pass" in words
    assert re.search(
        r"\d+(\.\d)?% \(CI \d+(\.\d)?-\d+(\.\d)?%\) of that variance comes from test-time dropout", words
    )
    assert f"{eval_acc.mean():.2f}" in page.tables["accuracy"]
    vc = pd.read_csv(out / "tables" / "variance_components.csv").set_index(["condition", "mode"])
    row = vc.loc[("hybridsn", "train")]
    assert row["share_within"] + row["share_between"] == pytest.approx(100)
    assert row["models"] == 3 and row["passes"] == 15


def test_report_lists_failed_runs_with_their_reasons(swept):
    uri, root = swept
    store_study = parse_study(
        {
            "name": "e2e",
            "device": "cpu",
            "models": ["hybridsn"],
            "dataset": HSI,
            "deterministic": True,
            "train": {"epochs": 1, "lr": 1e30, "optimizer": "sgd"},
            "seeds": {"replicates": 1, "base": 99},
            "test": {"passes": 5},
        }
    )
    seedvar.sweep(store_study, tracking_uri=uri, progress=False, jobs=1)
    out = seedvar.report("e2e", root / "with_failure", tracking_uri=uri).folder
    failed = pd.read_csv(out / "tables" / "failed_runs.csv")
    assert list(failed["status"]) == ["FAILED"] and "loss became" in failed["reason"][0]
    assert "loss became" in (out / "index.html").read_text()


def test_report_of_a_sources_study_gives_ratios_to_all(tmp_path, store_uri):
    seedvar.sweep(
        make_study("sources", True, vary=["init", "order"]), tracking_uri=store_uri, progress=False, jobs=1
    )
    out = seedvar.report("sources", tmp_path / "r", tracking_uri=store_uri, formats=["md"]).folder
    table = pd.read_csv(out / "tables" / "per_source.csv")
    assert list(table["source"]) == ["all", "init", "order"] and (table["n"] == 3).all()
    ratio = table.set_index("source")["ratio_to_all"]
    var = table.set_index("source")["variance"]
    assert ratio["init"] == pytest.approx(var["init"] / var["all"]) and ratio["all"] == 1.0
    assert (out / "figures" / "per_source.png").exists() and not (out / "index.html").exists()
    text = (out / "report.md").read_text()
    assert "Varied alone, the sources of training randomness give hybridsn" in text
    assert "as a ratio with a 95% F interval (3 replicates each): init" in text
    accuracy = pd.read_csv(out / "tables" / "accuracy.csv")
    assert (accuracy["runs"] == 3).all()  # per-condition statistics from the `all` reference runs only


def test_report_of_random_and_spatial_splits_side_by_side(tmp_path, store_uri):
    spec = make_study("splits", True, replicates=2)
    spec = dataclasses.replace(
        spec,
        dataset_options={**spec.dataset_options, "split": ["random", "spatial"], "block": 8},
        dataset_axes=("split",),
    )
    with pytest.raises(UserError):  # block goes with split = "spatial" only: refused before any run
        seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)
    spec = dataclasses.replace(spec, dataset_options={**spec.dataset_options, "block": None})
    seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)
    client = mlflow.MlflowClient(store_uri)
    exp = client.get_experiment_by_name("splits").experiment_id
    leak: dict[str, list[float]] = {}
    for r in client.search_runs([exp], schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN)):
        leak.setdefault(r.data.tags[schema.TAG_VARIANT], []).append(float(r.data.params["data.leakage"]))
    assert leak["split=spatial"] == [0.0, 0.0] and min(leak["split=random"]) > 0.5
    out = seedvar.report("splits", tmp_path / "r", tracking_uri=store_uri, formats=["md"]).folder
    splits = pd.read_csv(out / "tables" / "splits.csv").set_index("condition")
    assert list(splits.index) == ["hybridsn (split=random)", "hybridsn (split=spatial)"]
    assert splits.loc["hybridsn (split=spatial)", "leakage_max"] == 0.0
    assert splits.loc["hybridsn (split=random)", "leakage_min"] > 50
    accuracy = pd.read_csv(out / "tables" / "accuracy.csv")
    assert set(accuracy["condition"]) == set(splits.index)
    text = (out / "report.md").read_text()
    assert "hybridsn (split=spatial): 0.0% of test pixels have a training pixel" in text
    assert text.count("hybridsn (split=") >= 4 and (out / "figures" / "classification_maps.png").exists()


def test_ui_serves_the_store_and_sigterm_stops_its_whole_tree(swept, capsys):
    """SIGTERM (kill, systemd, a container stop) used to end `seedvar ui` alone, leaving its mlflow
    server and uvicorn holding the port."""
    uri, _ = swept
    port = free_port()
    server = Server("--tracking-uri", uri, "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        url = server.wait_for(r"^e2e\s+(http\S+)").group(1)
        server.wait_for("MLflow UI ready")
        api = f"{base}/api/2.0/mlflow"
        with urllib.request.urlopen(f"{api}/experiments/get-by-name?experiment_name=e2e", timeout=10) as r:
            experiment = json.load(r)["experiment"]
        exp_id = experiment["experiment_id"]
        assert url == (
            f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning&viewStateShareKey=seedvar"
        )
        body = json.dumps({"experiment_ids": [exp_id], "max_results": 1000}).encode()
        request = urllib.request.Request(
            f"{api}/runs/search", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            runs = json.load(r)["runs"]
        names = {r["info"]["run_name"] for r in runs}
        assert {"hybridsn-det-r00", "hybridsn-nondet-r02"} <= names

        # pointed at a tracking server, `seedvar ui` starts nothing and prints the same page on it
        capsys.readouterr()
        assert main(["ui", "--tracking-uri", base, "--experiment", "e2e"]) == 0
        assert capsys.readouterr().out.split() == ["e2e", url]
        opened: list[str] = []  # --open: the study's runs table, in the user's browser
        serve_ui(base, experiment="e2e", open_browser=True, out=io.StringIO(), opener=opened.append)
        assert opened == [url]
    finally:
        server.stop(signal.SIGTERM, port)


def test_report_of_one_model_per_condition(tmp_path, store_uri):
    seedvar.sweep(make_study("single", True, replicates=1), tracking_uri=store_uri, progress=False, jobs=1)
    out = seedvar.report("single", tmp_path / "r", tracking_uri=store_uri).folder
    text = (out / "report.md").read_text()
    assert "Variance components need at least two trained models" in text
    assert "In eval mode the model gives identical results on every pass (accuracy" in text
    assert not (out / "tables" / "variance_components.csv").exists()


def test_report_of_an_experiment_without_finished_runs_says_so(tmp_path, store_uri):
    failing = parse_study(
        {
            "name": "doomed",
            "device": "cpu",
            "models": ["hybridsn"],
            "dataset": HSI,
            "train": {"epochs": 1, "lr": 1e30, "optimizer": "sgd"},
            "seeds": {"replicates": 1},
            "test": {"passes": 2},
        }
    )
    seedvar.sweep(failing, tracking_uri=store_uri, progress=False, jobs=1)
    with pytest.raises(UserError, match=r"'doomed' has no finished runs yet \(1 FAILED\)"):
        seedvar.report("doomed", tmp_path / "r", tracking_uri=store_uri)
    assert not (tmp_path / "r").exists()


def test_the_report_loads_no_torch(swept, tmp_path):
    """`seedvar report` reads MLflow only: the process that writes a whole report (pages, tables, figures)
    never imports torch or torchvision, so it starts fast and runs where they are not installed."""
    uri, _ = swept
    script = (
        "import sys\n"
        "from seedvar.cli import main\n"
        f"code = main(['report', '--experiment', 'e2e', '--tracking-uri', {uri!r}, '--out', {str(tmp_path)!r},"
        " '--no-log'])\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))[:5])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr
    assert (tmp_path / "index.html").exists() and (tmp_path / "report.md").exists()


def test_a_study_report_holds_a_published_number_against_its_seeds(swept, tmp_path):
    """`--claim` on a seedvar study: the claim is held against each trained model's eval accuracy."""
    uri, _ = swept
    out = tmp_path / "claimed"
    assert (
        main(
            [
                "report",
                "--experiment",
                "e2e",
                "--tracking-uri",
                uri,
                "--out",
                str(out),
                "--no-log",
                "--claim",
                "hybridsn=99.5",
            ]
        )
        == 0
    )
    claims = pd.read_csv(out / "tables" / "claims.csv")
    assert list(claims["condition"]) == ["hybridsn"] and claims["claim"].iloc[0] == 99.5
    assert (
        claims["percentile_ci_low"].iloc[0]
        <= claims["percentile"].iloc[0]
        <= claims["percentile_ci_high"].iloc[0]
    )
    assert "99.5 lies at the" in (out / "report.md").read_text()
    with pytest.raises(UserError, match="resnet"):
        seedvar.report("e2e", tmp_path / "none", tracking_uri=uri, claims={"resnet": 90.0}, log=False)
    assert not (
        tmp_path / "none" / "tables"
    ).exists()  # an unknown condition stops before anything is written


def test_a_spec_s_claims_are_kept_by_its_sweeps_and_held_by_every_report(swept, tmp_path):
    """`claims = {...}` in a spec: the sweep tags the experiment with them and a report without --claim
    holds them (the lab study's published 99.75%)."""
    from seedvar.analysis.load import load_study
    from seedvar.plan import load_study as load_spec
    from seedvar.record.store import Store
    from seedvar.record.sweep_run import tag_experiment

    assert load_spec("lab").claims == (("hybridsn", 99.75),)
    with pytest.raises(UserError, match="claims: must be a table of condition = number"):
        parse_study({"name": "x", "dataset": HSI, "models": ["hybridsn"], "claims": {"hybridsn": "high"}})
    uri, _ = swept
    store = Store(uri, create=False)
    exp = store.experiment_id("e2e", create=False)
    tag_experiment(store, exp, [], claims=(("hybridsn", 99.5),))
    assert load_study(store, "e2e").claims == (("hybridsn", 99.5),)
    out = tmp_path / "spec-claims"
    assert main(["report", "--experiment", "e2e", "--tracking-uri", uri, "--out", str(out), "--no-log"]) == 0
    assert pd.read_csv(out / "tables" / "claims.csv")["claim"].tolist() == [99.5]
    store.set_experiment_tags(exp, {schema.TAG_CLAIMS: "{}"})  # the module's other tests see no claims
