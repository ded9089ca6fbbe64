"""Browsing a study in the MLflow UI: what a sweep records for the runs table (experiment kind, shared
view, descriptions, dataset inputs, the parent run's spread across seeds), the page itself in headless
Chromium, and stopping `seedvar ui` (and any supervised server) as a whole process tree."""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import mlflow
import numpy as np
import pytest
from scipy import stats
from ui_process import Server, alive, descendants, free_port, headless_chromium

import seedvar
from seedvar.analysis.spread import SeedSpread
from seedvar.cli import main
from seedvar.plan import parse_study
from seedvar.record import schema, view
from seedvar.record.recorder import SweepRecorder
from seedvar.record.serve import port_free
from seedvar.results import MODES, PassSummary, describe


@pytest.fixture(scope="module")
def study(tmp_path_factory, _template_store):
    """One small finished study: HybridSN on a synthetic scene, with and without deterministic kernels."""
    folder = tmp_path_factory.mktemp("ui") / "mlruns"
    folder.mkdir()
    shutil.copy(_template_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder}/mlflow.db"
    spec = parse_study(
        {
            "name": "browse",
            "device": "cpu",
            "models": ["hybridsn"],
            "dataset": {
                "name": "synthetic_hsi",
                "height": 24,
                "width": 24,
                "bands": 20,
                "pca": 13,
                "window": 9,
            },
            "deterministic": "both",
            "train": {"epochs": 1, "batch_size": 32},
            "seeds": {"replicates": 2},
            "test": {"passes": 3},
        }
    )
    result = seedvar.sweep(spec, tracking_uri=uri, progress=False)
    assert not result.failed
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("browse")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if r.data.tags.get(schema.TAG_KIND) == schema.KIND_RUN]
    parent = next(r for r in runs if r.data.tags.get(schema.TAG_KIND) == schema.KIND_SWEEP)
    return {
        "uri": uri,
        "root": folder.parent,
        "client": client,
        "exp": exp,
        "children": children,
        "parent": parent,
    }


def test_the_experiment_opens_on_a_shared_view_of_its_runs_table(study):
    tags = study["exp"].tags
    assert tags[schema.TAG_EXPERIMENT_KIND] == "custom_model_development"
    state = json.loads(tags[schema.TAG_VIEW_STATE])
    assert state["selectedColumns"][:3] == [
        "attributes.`Description`",
        "attributes.`Dataset`",
        "metrics.`test.eval.acc_mean`",
    ]
    for cond in ("hybridsn", "hybridsn-nondet"):
        for stat in ("acc_mean", "acc_std", "acc_ci_low", "acc_ci_high", "runs"):
            assert f"metrics.`summary.{cond}.train.{stat}`" in state["selectedColumns"]
    assert state["groupBy"]["groupByKeys"] == [
        {"mode": "param", "groupByData": "model"},
        {"mode": "tag", "groupByData": "seedvar.deterministic"},
    ]
    assert state["groupsExpanded"] == {"param.model,tag.seedvar.deterministic": True}  # the sweep runs


def test_each_run_carries_its_description_and_its_data(study):
    digests = set()
    for run in study["children"]:
        m, params = run.data.metrics, run.data.params
        summaries = {mode: schema.summary_from_metrics(mode, m) for mode in MODES}
        eval_, train = summaries["eval"], summaries["train"]
        description = run.data.tags[schema.TAG_NOTE]
        assert (
            description
            == f"eval {100 * eval_.acc_mean:.2f}, train {100 * train.acc_mean:.2f}±{100 * train.acc_std:.2f}"
        )
        assert len(description) <= 50  # what the runs table shows of a description
        (dataset_input,) = run.inputs.dataset_inputs
        dataset = dataset_input.dataset
        assert dataset.name == "synthetic_hsi"
        assert dataset.digest == params["data.fingerprint"][:12] and len(params["data.fingerprint"]) == 64
        profile = json.loads(dataset.profile)
        assert profile["split_seed"] == int(params["seed.split"])
        assert (profile["pca"], profile["window"], profile["train_fraction"]) == (13, 9, 0.3)
        assert profile["fingerprint"] == params["data.fingerprint"]
        assert {t.key: t.value for t in dataset_input.tags} == {"mlflow.data.context": "train+test"}
        digests.add(dataset.digest)
    assert len(digests) == 2  # two replicates, two splits; with and without deterministic kernels alike


def test_the_sweep_run_holds_the_spread_across_seeds(study):
    metrics = study["parent"].data.metrics
    for det, cond in ((True, "hybridsn"), (False, "hybridsn-nondet")):
        runs = [r for r in study["children"] if r.data.tags[schema.TAG_DETERMINISTIC] == str(det).lower()]
        for mode in MODES:
            x = np.array([r.data.metrics[f"test.{mode}.acc_mean"] for r in runs])
            half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
            got = {
                k.rsplit(".", 1)[1]: v for k, v in metrics.items() if k.startswith(f"summary.{cond}.{mode}.")
            }
            assert got == pytest.approx(
                {
                    "acc_mean": x.mean(),
                    "acc_std": x.std(ddof=1),
                    "acc_ci_low": x.mean() - half,
                    "acc_ci_high": x.mean() + half,
                    "runs": 2,
                }
            )


def test_report_no_log_leaves_the_sweep_run_alone(study, tmp_path):
    assert (
        main(
            [
                "report",
                "--experiment",
                "browse",
                "--tracking-uri",
                study["uri"],
                "--no-log",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert study["client"].list_artifacts(study["parent"].info.run_id, schema.ARTIFACT_REPORT) == []
    assert (tmp_path / "index.html").exists()


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    """Debian's chromium and its driver, else a skip that says how to get them; nothing is downloaded.
    Module-scoped and listed first, so that a skip comes before the study is built."""
    pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip(
            "no browser for the UI test: install Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver)"
        )
    return browser, driver


def test_the_runs_table_in_a_real_browser(chromium, study, tmp_path, monkeypatch):
    """What a new user sees at the URL `seedvar ui` prints: every trained model's run with its
    description and dataset, without a click; then Ctrl-C (SIGINT) stops the whole tree."""
    browser, driver_path = chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not fetch a browser or a driver
    port = free_port()
    server = Server("--tracking-uri", study["uri"], "--port", str(port))
    driver = None
    try:
        url = server.wait_for(r"^browse\s+(http\S+)").group(1)
        server.wait_for("MLflow UI ready")
        driver = headless_chromium(browser, driver_path, tmp_path / "profile")
        driver.get(url)
        names = [r.info.run_name for r in study["children"]]
        descriptions = [r.data.tags[schema.TAG_NOTE] for r in study["children"]]
        digests = [r.inputs.dataset_inputs[0].dataset.digest for r in study["children"]]
        expected = [*names, *descriptions, *(f"synthetic_hsi ({d})" for d in digests)]

        def page_text(d) -> str:
            return d.find_element(By.TAG_NAME, "body").text

        try:
            WebDriverWait(driver, 120, poll_frequency=0.5).until(
                lambda d: all(e in page_text(d) for e in expected)
            )
        except Exception:
            missing = [e for e in expected if e not in page_text(driver)]
            raise AssertionError(f"not on the page: {missing}\n{page_text(driver)}") from None
        text = page_text(driver)
        assert study["parent"].info.run_name in text  # the sweep run and its summary: folded by no one
        assert "Group: model: hybridsn, seedvar.deterministic: true" in text  # the shared view's state
        assert "Group by: model" in text and "Sort: Run Name" in text and "viewing a shared view" in text
        header = {
            name: driver.find_element(By.CSS_SELECTOR, f'.ag-header-cell[col-id="attributes.`{name}`"]').rect
            for name in ("Run Name", "Description", "Dataset")
        }
        # the shared view's column order and widths (the grid places its cells, whatever their DOM order)
        assert header["Run Name"]["x"] < header["Description"]["x"] < header["Dataset"]["x"], header
        assert {k: round(v["width"]) for k, v in header.items()} == {
            "Run Name": view.WIDTHS["Run Name"],
            "Description": view.WIDTHS["Description"],
            "Dataset": view.WIDTHS["Dataset"],
        }
        # far right, the sweep run's spread across seeds: the last condition and mode's mean, as MLflow has it
        key = "summary.hybridsn-nondet.mc_dropout.acc_mean"
        driver.execute_script(
            "const e = document.querySelector('.ag-body-horizontal-scroll-viewport'); e.scrollLeft = e.scrollWidth;"
        )
        want = str(study["parent"].data.metrics[key])
        WebDriverWait(driver, 30, poll_frequency=0.5).until(
            lambda d: (
                want
                in [c.text for c in d.find_elements(By.CSS_SELECTOR, f'.ag-cell[col-id="metrics.`{key}`"]')]
            )
        )
        driver.execute_script("document.querySelector('.ag-body-horizontal-scroll-viewport').scrollLeft = 0;")
        for close in driver.find_elements(
            By.CSS_SELECTOR, '[data-component-id="mlflow.assistant.chat_panel.close"]'
        ):
            close.click()  # the assistant panel opens by itself on a first visit; the table matters here
        time.sleep(1)
        shot = tmp_path / "mlflow-ui.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        if driver is not None:
            driver.quit()
        server.stop(signal.SIGINT, port)


# -------------------------------------------------------------------- pieces, without a server


def test_view_state_keeps_earlier_columns_and_fits_in_a_tag():
    first = view.experiment_tags([("a", True)], ["eval"], {})
    state = view.decode(first[schema.TAG_VIEW_STATE])
    assert "metrics.`summary.a.eval.acc_mean`" in state["selectedColumns"]
    second = view.decode(view.experiment_tags([("b", False)], ["eval"], first)[schema.TAG_VIEW_STATE])
    assert {"metrics.`summary.a.eval.acc_mean`", "metrics.`summary.b-nondet.eval.acc_mean`"} <= set(
        second["selectedColumns"]
    )
    many = [(f"model_{i:02d}", d) for i in range(40) for d in (True, False)]
    big = view.experiment_tags(many, list(MODES), {})[schema.TAG_VIEW_STATE]
    assert big.startswith("deflate;") and len(big) <= view.MAX_TAG_VALUE  # the UI's compressed form
    assert len(view.decode(big)["selectedColumns"]) == 2 + 7 + len(many) * 3 * 5


def test_runs_url_names_the_shared_view_only_where_there_is_one():
    base = "http://127.0.0.1:5000"
    assert view.runs_url(base, "7", {}) == f"{base}/#/experiments/7/runs?workflowType=machine_learning"
    with_view = view.runs_url(base + "/", "7", {schema.TAG_VIEW_STATE: "{}"})
    assert with_view == f"{base}/#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey=seedvar"


def test_description_names_eval_and_train_or_whatever_modes_a_run_has():
    mc = PassSummary(5, 0.9613, 0.001, 0.96, 0.962, 0.01)
    ev = PassSummary(2, 0.9661, 0.0, 0.9661, 0.9661, 0.0)
    assert describe({"eval": ev, "train": mc, "mc_dropout": mc}, schema.DESCRIPTION_MODES) == (
        "eval 96.61, train 96.13±0.10"
    )
    assert describe({"mc_dropout": mc}, schema.DESCRIPTION_MODES) == "mc_dropout 96.13±0.10"


def test_seed_spread_of_one_run_and_of_identical_runs():
    one = SeedSpread.of([0.9])
    assert (one.runs, one.acc_mean, one.acc_std, one.acc_ci_low, one.acc_ci_high) == (
        1,
        0.9,
        None,
        None,
        None,
    )

    class Logged:  # what the sweep's parent run receives: no std or interval for a single run
        def __init__(self):
            self.metrics = []

        def log(self, run_id, metrics):
            self.metrics += metrics

    store = Logged()
    SweepRecorder(store, "parent").log_summary({("m", "eval"): dataclasses.asdict(one)})
    assert [name for name, _, _ in store.metrics] == ["summary.m.eval.acc_mean", "summary.m.eval.runs"]
    same = SeedSpread.of([0.9, 0.9, 0.9])
    assert (same.acc_std, same.acc_ci_low, same.acc_ci_high) == (0.0, 0.9, 0.9)


# A server as `mlflow server` is one: a child that starts a grandchild holding the port.
TREE = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    listen = "import signal, socket, sys, time\\n" + (
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n" if sys.argv[2] == "stubborn" else ""
    ) + f"s = socket.socket(); s.bind(('127.0.0.1', {sys.argv[1]})); s.listen(); time.sleep(600)"
    subprocess.Popen([sys.executable, "-c", listen])
    time.sleep(600)
    """
)
SUPERVISOR = (
    "import sys; from seedvar.record.serve import supervise; sys.exit(supervise(sys.argv[1:], grace=1.0))"
)


@pytest.mark.parametrize(
    "sig, grandchild", [(signal.SIGTERM, "polite"), (signal.SIGINT, "polite"), (signal.SIGTERM, "stubborn")]
)
def test_supervise_stops_the_whole_tree_and_frees_the_port(sig, grandchild):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, sys.executable, "-c", TREE, str(port), grandchild]
    )
    try:
        deadline = time.monotonic() + 60
        while port_free("127.0.0.1", port) or len(descendants(proc.pid)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the tree did not come up"
            time.sleep(0.1)
        tree = descendants(proc.pid)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        assert not alive(tree) and port_free("127.0.0.1", port)
    finally:
        proc.kill()
