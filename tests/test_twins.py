"""Implementation twins (the same seeds under deterministic / nondeterministic kernels, 1 / 2 threads) and
`seedvar reproduce` (one logged run retrained and compared): the study's twins.csv, their intervals'
coverage by simulation of known truth, and reproduce's exit statuses on a copied store."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from seedvar.cli import main
from seedvar.errors import UserError
from seedvar.plan import expand, load_study, parse_study
from seedvar.record import schema as s
from seedvar.stats.twins import diff_std, implementation_share, time_ratio, twin_churn

TINY = """
name = "{name}"
device = "cpu"
deterministic = {det}
models = ["hybridsn"]
[dataset]
name = "synthetic_hsi"
height = 24
width = 24
bands = 20
pca = 13
window = 9
[train]
epochs = 1
batch_size = 16
threads = {threads}
[seeds]
replicates = {replicates}
[test]
passes = 2
"""


def test_a_list_of_threads_trains_twins_of_the_same_seeds_and_keeps_every_hash():
    plain = expand(load_study("quick"), "cpu")
    both = expand(load_study("quick", {"train.threads": [1, 2], "deterministic": "both"}), "cpu")
    assert len(both) == 4 * len(plain)
    one = [c for c in both if c.train.threads == 1 and c.deterministic]
    assert [c.config_hash for c in one] == [c.config_hash for c in plain]  # quick's runs stay its runs
    names = {c.condition.name for c in both}
    assert names == {"hybridsn", "hybridsn (threads=2)", "hybridsn (nondet)", "hybridsn (nondet, threads=2)"}
    two = [c for c in both if c.train.threads == 2 and c.deterministic]
    assert [c.seeds for c in two] == [c.seeds for c in plain]  # twins: the same seeds
    assert two[0].run_name == "hybridsn-det-threads2-r00"
    raw = {
        "name": "x",
        "models": ["hybridsn"],
        "dataset": {"name": "synthetic_hsi"},
    }
    for bad in ([], [1, 1], [1, "2"], [1, 0]):
        with pytest.raises(UserError, match="train.threads"):
            parse_study({**raw, "train": {"threads": bad}})
    with pytest.raises(UserError, match="train.precision"):
        parse_study({**raw, "train": {"precision": ["fp32", "fp64"]}})


def test_twin_numbers_on_known_cases():
    a = np.array([90.0, 91.0, 92.0, 93.0])
    same = diff_std(a, a)
    assert same.std == 0 and same.ci == (0.0, 0.0)  # identical twins: no grid floor asked for
    assert implementation_share(a, a).ci == (0.0, 0.0)
    tied = diff_std(a, a, resolution=1.0)  # equal on a 1-point grid: an upper bound, not [0, 0]
    assert tied.std == 0 and 0 < tied.ci[0] < tied.ci[1]
    ids = np.arange(4)
    one = twin_churn([((ids, np.array([0, 1, 1, 0])), (ids, np.array([0, 1, 0, 0])))])
    assert one.rate == 0.25 and np.isnan(one.ci).all()  # one pair: no interval
    two = twin_churn([((ids, np.array([0, 1, 1, 0])), (ids, np.array([0, 1, 0, 0])))] * 2)
    assert two.rate == 0.25 and two.ci[0] <= 0.25 <= two.ci[1]
    none = twin_churn([((ids, np.zeros(4)), (ids, np.zeros(4)))] * 3)  # identical twins: 0, with a bound
    assert none.rate == 0 and none.ci[0] == 0 and none.ci[1] == pytest.approx(1 - 0.025 ** (1 / 12))
    r = time_ratio([1.0, 4.0], [2.0, 2.0])
    assert r.ratio == pytest.approx(1.0) and r.ci[0] < 1 < r.ci[1]
    assert time_ratio([1.0, 1.0], [2.0, 2.0]).ci == pytest.approx((2.0, 2.0))


@pytest.mark.parametrize("n", [3, 10])
def test_twin_intervals_hold_their_rate_at_few_pairs(n):
    """Known truth: a_i = S_i + I_ai, b_i = S_i + I_bi (seed std 1, implementation std 0.5 or 2); the 95%
    intervals of the differences' std and of the implementation's share cover it (400 studies each, so
    0.92 is 3 Monte Carlo standard errors below 0.95)."""
    rng = np.random.default_rng(n)
    for impl in (0.5, 2.0):
        hit_std = hit_share = 0
        reps = 400
        for _ in range(reps):
            seed = rng.normal(0, 1.0, n)
            a = 90 + seed + rng.normal(0, impl, n)
            b = 90.3 + seed + rng.normal(0, impl, n)
            d, sh = diff_std(a, b), implementation_share(a, b)
            hit_std += d.ci[0] <= math.sqrt(2) * impl <= d.ci[1]
            hit_share += sh.ci[0] <= impl**2 / (1 + impl**2) <= sh.ci[1]
        assert hit_std / reps >= 0.92 and hit_share / reps >= 0.92, (n, impl, hit_std, hit_share)


@pytest.mark.slow
def test_deterministic_and_thread_twins_in_a_study(tmp_path, store_uri):
    """A 3-seed study with deterministic = "both" and threads = [1, 2] on a CPU: the deterministic twins are
    bit-identical, the thread twins are not, and no twin is ranked as a condition."""
    spec = tmp_path / "twins.toml"
    spec.write_text(TINY.format(name="twins", det='"both"', threads="[1, 2]", replicates=3))
    assert main(["sweep", str(spec), "--tracking-uri", store_uri, "--no-progress", "--jobs", "1"]) == 0
    out = tmp_path / "report"
    assert main(["report", "--experiment", "twins", "--tracking-uri", store_uri, "--out", str(out)]) == 0
    twins = pd.read_csv(out / "tables" / "twins.csv")
    assert list(twins.columns) == [
        "setting", "a", "b", "pairs", "identical_weights", "churn", "churn_ci_low", "churn_ci_high",
        "churn_seeds", "diff_std", "diff_std_ci_low", "diff_std_ci_high", "share", "share_ci_low",
        "share_ci_high", "time_ratio", "time_ratio_ci_low", "time_ratio_ci_high",
    ]  # fmt: skip
    det = twins[twins["setting"] == "deterministic"]
    assert len(det) == 2 and (det["pairs"] == 3).all()
    assert (det["identical_weights"] == det["pairs"]).all() and (det["churn"] == 0).all()
    assert (det["churn_ci_low"] == 0).all() and (det["churn_ci_high"] > 0).all()  # 3 pairs: a bound, not 0
    threads = twins[twins["setting"] == "threads"]
    assert len(threads) == 2 and (threads["identical_weights"] < threads["pairs"]).all()
    assert threads["churn"].notna().all() and (threads["diff_std_ci_high"] > 0).all()
    assert set(threads["a"]) == {"hybridsn", "hybridsn (nondet)"}
    conditions = pd.read_csv(out / "tables" / "conditions.csv").set_index("condition")["group"]
    assert conditions["hybridsn"] != "twin"
    assert (conditions.drop("hybridsn") == "twin").all()
    md = (out / "report.md").read_text()
    answer = md.split("## The answer", 1)[1]
    assert answer.index("deterministic=false") < answer.index("4 conditions")  # the twins are said first
    assert "3 of 3 twins bit-identical on cpu" in md
    assert "same mean eval accuracy" not in md and "rank" not in answer.split("not ranked")[1][:2000]


@pytest.fixture(scope="module")
def one_run(tmp_path_factory, _template_store):
    """A store holding a one-run study (what reproduce retrains), copied per test."""
    root = tmp_path_factory.mktemp("reproduce")
    (root / "mlruns").mkdir()
    shutil.copy(_template_store, root / "mlruns" / "mlflow.db")
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    spec = root / "one.toml"
    spec.write_text(TINY.format(name="one", det="true", threads="1", replicates=2))
    assert main(["sweep", str(spec), "--tracking-uri", uri, "--no-progress", "--jobs", "1"]) == 0
    return root


def _copy(one_run, tmp_path) -> tuple[str, MlflowClient, list]:
    shutil.copytree(one_run / "mlruns", tmp_path / "mlruns")
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("one")
    runs = client.search_runs([exp.experiment_id])
    return uri, client, runs


def test_reproduce_an_untouched_run_then_an_altered_one(one_run, tmp_path, capsys):
    uri, client, runs = _copy(one_run, tmp_path)
    run = next(r for r in runs if r.data.tags.get(s.TAG_KIND) == s.KIND_RUN)
    rid = run.info.run_id
    assert main(["reproduce", rid, "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "reproduced bit for bit"
    assert client.get_run(rid).data.tags[s.TAG_REPRODUCED].startswith("reproduced bit for bit (")

    client.set_tag(
        rid, s.TAG_WEIGHTS, "0" * 64
    )  # the logged digest and torch version, altered after the fact
    client.set_tag(rid, s.environment_tag("torch"), "1.0.0")
    assert main(["reproduce", rid, "--tracking-uri", uri]) == 1
    verdict = capsys.readouterr().out.splitlines()[0]
    assert verdict.startswith("weights differ; predictions identical")
    assert "torch 1.0.0 -> " in verdict
    assert client.get_run(rid).data.tags[s.TAG_REPRODUCED].startswith("weights differ")

    import seedvar

    rep = seedvar.reproduce(rid, tracking_uri=uri, tag=False)
    assert rep.exit_code == 1 and not rep.same_weights and all(m.identical for m in rep.modes)


def test_reproduce_bad_input_is_one_line_exit_2_and_writes_nothing(store_uri, capsys):
    before = sorted(MlflowClient(store_uri).search_experiments(), key=lambda e: e.name)
    assert main(["reproduce", "0123456789abcdef0123456789abcdef", "--tracking-uri", store_uri]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no run" in err
    assert len(MlflowClient(store_uri).search_experiments()) == len(before)


def test_reproduce_a_study_sample_then_refuse_a_sweep_run_and_a_run_whose_config_is_gone(
    one_run, tmp_path, capsys
):
    uri, client, runs = _copy(one_run, tmp_path)
    assert main(["reproduce", "one", "--runs", "1", "--tracking-uri", uri, "--no-tag"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "reproduced bit for bit: 1 of 1 runs" and "hybridsn-det-r00" in table[1]
    assert main(["reproduce", "one", "--runs", "0", "--tracking-uri", uri]) == 2
    assert "--runs must be at least 1" in capsys.readouterr().err
    sweep = next(r for r in runs if r.data.tags.get(s.TAG_KIND) == s.KIND_SWEEP)
    assert main(["reproduce", sweep.info.run_id, "--tracking-uri", uri]) == 2
    assert "sweep's parent run" in capsys.readouterr().err
    run = next(r for r in runs if r.data.tags.get(s.TAG_KIND) == s.KIND_RUN)
    # the copied store's runs keep their artifact locations: the config is moved away there, then back
    config = Path(run.info.artifact_uri.removeprefix("file://")) / s.ARTIFACT_CONFIG
    moved = config.with_suffix(".moved")
    config.rename(moved)
    try:
        assert main(["reproduce", run.info.run_id, "--tracking-uri", uri]) == 2
    finally:
        moved.rename(config)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config.json is gone" in err
    assert s.TAG_REPRODUCED not in client.get_run(run.info.run_id).data.tags


def test_the_verdict_says_what_differs_first():
    from seedvar.sweeper.reproduce import BIT_FOR_BIT, WEIGHTS_ONLY, ModeCheck, _verdict

    same = ModeCheck("eval", 1, True, 0.0, float("nan"), 96.0, 96.0, 1.5)
    moved = ModeCheck("eval", 1, False, 0.014, float("nan"), 96.0, 95.69, 1.55)
    torch = [("torch", "2.14.1", "2.15.0"), ("python", "3.11.9", "3.11.9")]
    assert _verdict(True, [same], torch) == BIT_FOR_BIT  # the same bits in another environment
    assert _verdict(False, [same], torch) == f"{WEIGHTS_ONLY}; environment: torch 2.14.1 -> 2.15.0"
    assert _verdict(False, [moved], torch) == (
        "differs: weights differ; eval accuracy -0.31 points (-0.2 seed stds), 1.4% of test predictions "
        "change class; environment: torch 2.14.1 -> 2.15.0"
    )
