"""Browsing a study in the MLflow UI: what a sweep records for the runs table (experiment kind, shared
view, descriptions, dataset inputs, the parent run's spread across seeds), the page itself in headless
Chromium, and stopping `seedvar ui` (and any supervised server) as a whole process tree."""

from __future__ import annotations

import json
import multiprocessing
import re
import signal
import subprocess
import sys
import textwrap
import time

import mlflow
import numpy as np
import pytest
from conftest import TINY_SCENE
from scipy import stats
from ui_process import Server, alive, chromium_or_skip, descendants, free_port, headless_chromium

import seedvar
from seedvar.cli import main
from seedvar.plan import parse_study
from seedvar.record import schema, view
from seedvar.record.condition_runs import record_conditions
from seedvar.record.reader import StoredRun, read_runs
from seedvar.record.store import Store
from seedvar.results import MODES, PassSummary, describe, points
from seedvar.serving.supervise import port_free
from seedvar.stats.samples import Cell, Model
from seedvar.sweeper.finish import condition_spreads, seed_spread

pytestmark = pytest.mark.slow  # sweeps, an 800-run store, Chromium, server processes: minutes


@pytest.fixture(scope="module")
def study(tmp_path_factory, swept_store):
    """One small finished study: HybridSN on a synthetic scene, with and without deterministic kernels."""
    folder = tmp_path_factory.mktemp("ui") / "mlruns"
    spec = parse_study(
        {
            "name": "browse",
            "device": "cpu",
            "models": ["hybridsn"],
            "dataset": TINY_SCENE,
            "deterministic": "both",
            "train": {"epochs": 1, "batch_size": 32},
            "seeds": {"replicates": 2},
            "test": {"passes": 3},
        }
    )
    uri, result = swept_store(spec, folder)
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


def test_the_experiment_opens_on_a_shared_view_of_its_conditions(study):
    tags = study["exp"].tags
    assert tags[schema.TAG_EXPERIMENT_KIND] == "custom_model_development"
    state = json.loads(tags[schema.TAG_VIEW_STATE])
    # sorted by a metric only condition runs carry: the conditions first, best first, then every other run
    assert state["searchFilter"] == ""
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`seeds.eval.acc_mean`", False)
    assert state["selectedColumns"][:6] == [
        "attributes.`Description`",
        *(
            f"metrics.`seeds.eval.{stat}`"
            for stat in ("acc_mean", "acc_std", "acc_ci_low", "acc_ci_high", "runs")
        ),
    ]
    assert "metrics.`test.train.flip_rate`" in state["selectedColumns"]  # for the seed runs, one click away
    assert "groupBy" not in state


def t_interval(runs: list, mode: str) -> dict[str, float]:
    """The 95% t-interval of the per-run mean accuracy (fractions), its std floored at one test sample
    over sqrt(12), worked by hand from the runs' logged metrics and params."""
    x = np.array([r.data.metrics[f"test.{mode}.acc_mean"] for r in runs])
    sd = max(x.std(ddof=1), 1 / min(int(r.data.params["data.n_test"]) for r in runs) / np.sqrt(12))
    half = stats.t.ppf(0.975, len(x) - 1) * sd / np.sqrt(len(x))
    return {
        "acc_mean": x.mean(),
        "acc_std": x.std(ddof=1),
        "acc_ci_low": max(x.mean() - half, 0.0),
        "acc_ci_high": min(x.mean() + half, 1.0),
        "runs": len(x),
    }


def test_each_condition_has_a_run_with_its_spread_and_its_seeds_as_children(study):
    client, exp = study["client"], study["exp"]
    conditions = client.search_runs([exp.experiment_id], "tags.`seedvar.kind` = 'condition'")
    assert sorted(r.info.run_name for r in conditions) == ["hybridsn", "hybridsn-nondet"]
    for cond in conditions:
        key = cond.data.tags[schema.TAG_CONDITION]
        seeds = [
            r
            for r in study["children"]
            if r.data.tags[schema.TAG_DETERMINISTIC] == str(key == "hybridsn").lower()
        ]
        children = client.search_runs(
            [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{cond.info.run_id}'"
        )
        assert sorted(r.info.run_id for r in children) == sorted(r.info.run_id for r in seeds)
        assert all(r.data.tags[schema.TAG_CONDITION] == key for r in children)
        assert cond.info.status == "FINISHED"
        for mode in MODES:
            got = {stat: cond.data.metrics[f"seeds.{mode}.{stat}"] for stat in schema.SEED_STATS}
            assert got == pytest.approx(t_interval(seeds, mode))
        eval_ = t_interval(seeds, "eval")
        line = cond.data.tags[schema.TAG_NOTE].split("\n")[0]
        assert line == (
            f"eval {100 * eval_['acc_mean']:.2f}±{100 * eval_['acc_std']:.2f} "
            f"(CI {100 * eval_['acc_ci_low']:.2f}-{100 * eval_['acc_ci_high']:.2f}), 2 seeds"
        )
        assert len(line) <= 50  # what the runs table shows of a description
    # the next sweep's end updates them in place: no second run per condition
    record_conditions(
        Store(study["uri"]),
        exp.experiment_id,
        *condition_spreads([StoredRun.of(r) for r in study["children"]], list(MODES)),
    )
    again = client.search_runs([exp.experiment_id], "tags.`seedvar.kind` = 'condition'")
    assert sorted(r.info.run_id for r in again) == sorted(r.info.run_id for r in conditions)


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


def test_the_spread_across_seeds_is_logged_once_and_the_report_gives_the_same_interval(study):
    """The condition runs hold each condition's spread; the sweep run holds none (it did, twice over), and
    the report's 95% interval of mean eval accuracy is the condition run's, from the same function."""
    assert not [k for k in study["parent"].data.metrics if k.startswith(schema.SUMMARY_PREFIX)]
    rep = seedvar.report("browse", tracking_uri=study["uri"])
    acc = rep.tables["accuracy"].set_index(["condition", "mode"])
    conditions = study["client"].search_runs(
        [study["exp"].experiment_id], "tags.`seedvar.kind` = 'condition'"
    )
    names = {"hybridsn": "hybridsn", "hybridsn-nondet": "hybridsn (nondet)"}
    for cond in conditions:
        for mode in MODES:
            row = acc.loc[(names[cond.info.run_name], mode)]
            logged = [cond.data.metrics[f"seeds.{mode}.acc_ci_{end}"] for end in ("low", "high")]
            assert [row["ci_low"], row["ci_high"]] == pytest.approx([100 * v for v in logged], abs=1e-9)


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
    Listed first, so that a skip comes before the study is built."""
    return chromium_or_skip()


# Every rendered row of the runs table: {row index: {column id: its text and rectangle}}.
GRID_ROWS = """
const out = {};
for (const row of document.querySelectorAll('.ag-row')) {
  const cells = out[row.getAttribute('row-index')] ??= {};
  for (const cell of row.querySelectorAll('.ag-cell')) {
    const b = cell.getBoundingClientRect();
    cells[cell.getAttribute('col-id')] = {text: cell.innerText, x: b.x, y: b.y, w: b.width, h: b.height};
  }
}
return out;
"""
# The part of the page where the table's rows show: its body, within the window.
GRID_BOX = """
const b = document.querySelector('.ag-body-viewport').getBoundingClientRect();
return {left: b.left, right: Math.min(b.right, window.innerWidth), top: b.top,
        bottom: Math.min(b.bottom, window.innerHeight)};
"""

# Click the first link whose text is arguments[0]; false when there is none.
CLICK_LINK = """
for (const a of document.querySelectorAll('a')) {
  if (a.innerText.trim() === arguments[0]) { a.click(); return true; }
}
return false;
"""
# The names of the seed runs linked from the page.
SEED_LINKS = """
return [...document.querySelectorAll("a[href*='/runs/']")].map(a => a.innerText.trim()).filter(t => t.includes('-det-r'));
"""

LAB_MODELS = (
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "shufflenet_v1",
    "shufflenet_v2",
    "senet18",
    "cbam_resnet18",
)


def write_seed_runs(uri: str, experiment_id: str, sweep_id: str, models: list[tuple[int, str]]) -> None:
    """100 finished seed runs per model, children of the sweep run, as a sweep leaves them: tags, each
    mode's summary metrics, the description. Model i's accuracy is 0.80 + 0.01 i with seed noise."""
    store = Store(uri)
    for i, model in models:
        rng = np.random.default_rng(i)
        for rep in range(100):
            tags = {
                schema.TAG_KIND: schema.KIND_RUN,
                schema.TAG_MODEL: model,
                schema.TAG_REPLICATE: str(rep),
                schema.TAG_DETERMINISTIC: "true",
                schema.TAG_CONFIG_HASH: f"{model}-{rep}",
            }
            run_id = store.start_run(experiment_id, f"{model}-det-r{rep:02d}", tags, parent_id=sweep_id)
            acc = 0.80 + 0.01 * i + rng.normal(0, 0.01)
            summaries = {
                mode: PassSummary(
                    10, acc - 0.005 * (mode != "eval"), 0.002 * (mode != "eval"), acc - 0.01, acc, 0.02
                )
                for mode in MODES
            }
            metrics = [m for mode in MODES for m in schema.summary_metrics(summaries[mode], mode)]
            store.log(run_id, metrics, tags={schema.TAG_NOTE: describe(summaries, schema.DESCRIPTION_MODES)})
            store.end(run_id, "FINISHED")


@pytest.fixture(scope="module")
def lab_store(chromium, tmp_path_factory, new_store):
    """The lab's study shape, 8 models x 100 seeds, written straight through the record (no training) by
    two processes at once, then what a sweep's end records: the spread across seeds on the sweep run and
    the condition runs, which take the seed runs as their children. After `chromium`, so that a machine
    without a browser builds nothing."""
    folder = tmp_path_factory.mktemp("lab") / "mlruns"
    uri = new_store(folder)
    store = Store(uri)
    exp = store.experiment_id("lab")
    store.set_experiment_tags(exp, view.experiment_tags(list(MODES), {}))
    sweep = store.start_run(exp, "sweep-lab", {schema.TAG_KIND: schema.KIND_SWEEP})
    models = list(enumerate(LAB_MODELS))
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # MLflow's Python, not sqlite, is the cost
        pool.starmap(write_seed_runs, [(uri, exp, sweep, models[0::2]), (uri, exp, sweep, models[1::2])])
    store.end(sweep, "FINISHED")
    runs = [r for r in read_runs(store, exp) if r.kind == schema.KIND_RUN]
    record_conditions(store, exp, *condition_spreads(runs, MODES))
    return {"uri": uri, "store": store, "exp": exp, "runs": runs}


def test_the_first_screen_shows_every_condition_of_800_runs(chromium, lab_store, tmp_path, monkeypatch):
    """At the URL `seedvar ui` prints for an 8 x 100 study: every condition on the first screen, without
    scrolling or loading more, with its mean, std, CI and seeds, above the seed runs; one click on a
    condition leads to its seed runs; Ctrl-C (SIGINT) stops the whole tree."""
    browser, driver_path = chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not fetch a browser or a driver
    store, exp = lab_store["store"], lab_store["exp"]
    conditions = {
        r.name: r for r in read_runs(store, exp, schema.tag_filter(schema.TAG_KIND, schema.KIND_CONDITION))
    }
    assert sorted(conditions) == sorted(LAB_MODELS)
    port = free_port()
    server = Server("--tracking-uri", lab_store["uri"], "--port", str(port))
    driver = None
    try:
        url = server.wait_for(r"^lab\s+(http\S+)").group(1)
        server.wait_for("MLflow UI ready")
        driver = headless_chromium(browser, driver_path, tmp_path / "profile")
        driver.get(url)
        lines = {name: r.tags[schema.TAG_NOTE].split("\n")[0] for name, r in conditions.items()}

        def page_text(d) -> str:
            return d.find_element(By.TAG_NAME, "body").text

        try:
            WebDriverWait(driver, 120, poll_frequency=0.5).until(
                lambda d: all(line in page_text(d) for line in lines.values())
            )
        except Exception:
            missing = [n for n, line in lines.items() if line not in page_text(driver)]
            raise AssertionError(f"conditions not on the page: {missing}\n{page_text(driver)}") from None
        text = page_text(driver)
        assert "viewing a shared view" in text
        for close in driver.find_elements(
            By.CSS_SELECTOR, '[data-component-id="mlflow.assistant.chat_panel.close"]'
        ):
            close.click()  # the assistant panel opens by itself on a first visit, over a third of the page
        time.sleep(1)
        wanted = [
            "attributes.`Run Name`",
            "attributes.`Description`",
            *(f"metrics.`seeds.eval.{s}`" for s in schema.SEED_STATS),
        ]

        def first_rows(d) -> list[dict] | None:
            """The table's first 8 rows as laid out now (cells' text and rectangles), read in one go:
            the grid re-renders its rows as they load, so element handles go stale."""
            rows = d.execute_script(GRID_ROWS)
            first = [rows.get(str(i), {}) for i in range(9)]
            return first if all(set(wanted) <= set(r) for r in first) else None

        rows = WebDriverWait(driver, 30, poll_frequency=0.5).until(first_rows)
        grid = driver.execute_script(GRID_BOX)  # the table's visible part
        ranked = [r["attributes.`Run Name`"]["text"].split("\n")[-1] for r in rows]
        assert ranked[:8] == list(reversed(LAB_MODELS))  # the conditions first, best eval accuracy first
        assert re.fullmatch(r"\w+-det-r\d\d", ranked[8])  # then the seed runs
        for name, cells in zip(ranked[:8], rows, strict=False):  # each condition whole on the first screen
            for col in wanted[1:]:
                box = cells[col]
                assert grid["top"] <= box["y"] and box["y"] + box["h"] <= grid["bottom"], (
                    name,
                    col,
                    box,
                    grid,
                )
                assert grid["left"] <= box["x"] and box["x"] + box["w"] <= grid["right"], (
                    name,
                    col,
                    box,
                    grid,
                )
            assert cells["attributes.`Description`"]["text"] == lines[name]  # mean±std (CI), seeds, in points
            assert cells["metrics.`seeds.eval.runs`"]["text"] == "100"
            mean = conditions[name].metrics["seeds.eval.acc_mean"]
            assert float(cells["metrics.`seeds.eval.acc_mean`"]["text"]) == pytest.approx(mean, rel=1e-9)
        shot = tmp_path / "mlflow-ui.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

        # one click on a condition: its page lists its seed runs (its child runs)
        assert driver.execute_script(CLICK_LINK, "senet18")
        senet = conditions["senet18"].run_id
        WebDriverWait(driver, 60, poll_frequency=0.5).until(
            lambda d: senet in d.current_url and "Child runs" in page_text(d)
        )

        def seed_links(d) -> list[str] | None:
            found = d.execute_script(SEED_LINKS)
            return found if len(found) >= 10 else None

        links = WebDriverWait(driver, 60, poll_frequency=0.5).until(seed_links)
        assert all(re.fullmatch(r"senet18-det-r\d\d", n) for n in links), links
    finally:
        if driver is not None:
            driver.quit()
        server.stop(signal.SIGINT, port)


# -------------------------------------------------------------------- pieces, without a server


def test_view_state_keeps_earlier_columns_but_not_the_old_per_condition_ones():
    first = view.experiment_tags(["eval"], {})
    state = view.decode(first[schema.TAG_VIEW_STATE])
    assert "metrics.`seeds.eval.acc_mean`" in state["selectedColumns"]
    state["selectedColumns"] += ["metrics.`my.metric`", "metrics.`summary.a.eval.acc_mean`"]
    second = view.decode(
        view.experiment_tags(["train"], {schema.TAG_VIEW_STATE: view.encode(state)})[schema.TAG_VIEW_STATE]
    )
    assert second["selectedColumns"][1] == "metrics.`seeds.train.acc_mean`"  # this plan's modes first
    assert {"metrics.`seeds.eval.acc_mean`", "metrics.`my.metric`"} <= set(second["selectedColumns"])
    assert "metrics.`summary.a.eval.acc_mean`" not in second["selectedColumns"]
    assert second["orderByKey"] == "metrics.`seeds.train.acc_mean`"  # ranked by the first mode there is
    assert view.decode(view.encode({"x": "y" * 30_000})) == {"x": "y" * 30_000}  # the UI's compressed form


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
    def members(values: list[float], n_test: int = 500) -> Cell:
        run = StoredRun("r", "r", "FINISHED", "m", True, "all", 0, "h", params={"data.n_test": str(n_test)})
        step = run.resolution  # 100 / n_test points
        models = tuple(Model("r", "r", points(v), 0.0, points(v), points(v), 1, step) for v in values)
        return Cell("m", "eval", models, (run,) * len(values))

    one = seed_spread(members([0.9]))
    assert one == {"acc_mean": 0.9, "acc_std": None, "acc_ci_low": None, "acc_ci_high": None, "runs": 1}
    same = seed_spread(members([0.9, 0.9, 0.9]))
    half = stats.t.ppf(0.975, 2) * (1 / 500 / np.sqrt(12)) / np.sqrt(3)  # one test sample of 500, floored
    assert same["acc_std"] == 0.0
    assert (same["acc_ci_low"], same["acc_ci_high"]) == pytest.approx((0.9 - half, 0.9 + half))
    assert view.condition_note({"eval": one}) == "eval 90.00, 1 seed"


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
SUPERVISOR = "import sys; from seedvar.serving.supervise import supervise; sys.exit(supervise(sys.argv[1:], grace=1.0))"


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
