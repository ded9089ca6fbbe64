"""What keeps a report fast at the lab's study shape: bulk reads from the store, the local run cache, churn
linear in the number of models, and figures of bounded size from 1 to 30 conditions."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from seedvar.analysis import figures, load
from seedvar.record import schema
from seedvar.record.cache import RunCache, folder_for
from seedvar.record.reader import read_runs
from seedvar.record.store import Store
from seedvar.results import EpochStats, Predictions
from seedvar.stats import flips
from seedvar.stats.compare import letter_groups


def stored_run(store: Store, exp: str, name: str, seed: int, *, finish: bool = True) -> str:
    """A trained model's run as the record leaves it: tags, curves, summaries, the predictions file."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 50)
    passes = {
        m: np.where(rng.random((3, 50)) < 0.8, labels, (labels + 1) % 4).astype(np.int16)
        for m in ("eval", "train")
    }
    preds = Predictions(
        labels, passes, {m: np.arange(3, dtype=np.uint32) for m in passes}, np.arange(50), list("abcd")
    )
    tags = {schema.TAG_KIND: schema.KIND_RUN, schema.TAG_MODEL: "net", schema.TAG_REPLICATE: str(seed)}
    run_id = store.start_run(exp, name, {**tags, schema.TAG_CONFIG_HASH: name})
    epochs = [EpochStats(e, 1.0 / e + seed, 0.5 + 0.1 * e, 1.0, 100.0, 1e-3) for e in range(1, 4)]
    metrics = [m for st in epochs for m in schema.epoch_metrics(st)]
    metrics += [m for mode in passes for m in schema.summary_metrics(preds.summary(mode), mode)]
    store.log(run_id, metrics)
    store.log_files(run_id, {schema.ARTIFACT_PREDICTIONS: preds.to_bytes()})
    if finish:
        store.end(run_id, "FINISHED")
    return run_id


@pytest.fixture
def study_store(store_uri):
    store = Store(store_uri)
    exp = store.experiment_id("scale")
    ids = [stored_run(store, exp, f"net-det-r{i:02d}", i) for i in range(4)]
    return store, exp, ids


def test_artifacts_and_histories_in_bulk_equal_the_one_by_one_reads(study_store, tmp_path):
    store, exp, ids = study_store
    runs = {r.run_id: r for r in read_runs(store, exp)}
    blobs = store.read_artifacts({i: runs[i].artifact_uri for i in ids}, schema.ARTIFACT_PREDICTIONS)
    for i in ids:
        one = store.download(i, schema.ARTIFACT_PREDICTIONS, tmp_path / i)
        assert blobs[i] == one.read_bytes()
    for key in ("train.loss", "train.acc"):
        bulk = store.metric_histories(ids, key)
        assert bulk == {i: store.metric_history(i, key) for i in ids}
        assert [len(v) for v in bulk.values()] == [3, 3, 3, 3]
    assert store.metric_histories(ids[:1], "no.such.metric") == {ids[0]: []}


def test_a_second_report_reads_only_new_or_changed_runs_from_the_store(study_store):
    store, exp, ids = study_store
    first = load.load_study(store, "scale")
    assert first.read == 4 and len(first.finished) == 4
    again = load.load_study(store, "scale")
    assert again.read == 0  # everything from the cache, and the same data
    for a, b in zip(first.finished, again.finished, strict=True):
        assert a.curves == b.curves and np.array_equal(a.preds.passes["train"], b.preds.passes["train"])
    new = stored_run(store, exp, "net-det-r04", 4)
    assert load.load_study(store, "scale").read == 1  # only the new run
    store.set_running(ids[0])  # resumed: RUNNING, never taken from the cache
    resumed = load.load_study(store, "scale")
    assert resumed.read == 0 and ids[0] not in {r.run_id for r in resumed.finished}
    store.log(ids[0], [("train.loss", 0.01, 4)])
    store.end(ids[0], "FINISHED")  # finished again with one more epoch: a new end time, read again
    rerun = load.load_study(store, "scale")
    assert rerun.read == 1
    assert next(r for r in rerun.finished if r.run_id == ids[0]).curves["loss"][-1] == (4, 0.01)
    store.log(ids[1], [("train.loss", 0.02, 4)])  # a metric logged into a finished run: changed
    assert load.load_study(store, "scale").read == 1
    assert load.load_study(store, "scale", cache=False).read == 5
    cache = RunCache(folder_for(store, exp))
    assert sorted(p.stem for p in cache.folder.iterdir()) == sorted([*ids, new])


def test_the_cache_never_holds_a_running_run_and_drops_runs_gone(study_store, tmp_path):
    store, exp, ids = study_store
    running = stored_run(store, exp, "net-det-r09", 9, finish=False)
    cache = RunCache(tmp_path / "cache")
    runs = {r.run_id: r for r in read_runs(store, exp)}
    cache.put(runs[running], {"x": np.arange(3)})
    assert cache.get(runs[running]) is None and not (tmp_path / "cache").exists()
    cache.put(runs[ids[0]], {"x": np.arange(3)})
    assert np.array_equal(cache.get(runs[ids[0]])["x"], np.arange(3))
    (tmp_path / "cache" / f"{ids[0]}.npz").write_bytes(b"not a zip file")  # a broken entry is a miss
    assert cache.get(runs[ids[0]]) is None
    cache.put(runs[ids[1]], {"x": np.arange(3)})
    cache.prune([ids[0]])
    assert [p.stem for p in (tmp_path / "cache").iterdir()] == [ids[0]]  # ids[1] left the study
    assert RunCache(None).get(runs[ids[0]]) is None  # caching off


def brute_churn(models: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Disagreements over comparisons, every pair on the samples both saw: the definition, pair by pair."""
    differ = compared = 0
    for (ia, pa), (ib, pb) in itertools.combinations(models, 2):
        common, a, b = np.intersect1d(ia, ib, return_indices=True)
        differ += int((pa[a] != pb[b]).sum())
        compared += len(common)
    return differ / compared


def test_churn_over_models_tested_on_different_samples_weighs_pairs_by_what_they_share():
    rng = np.random.default_rng(3)
    models = []
    for _ in range(30):  # random splits: each model sees its own 70% of 500 samples
        ids = np.sort(rng.choice(500, 350, replace=False))
        models.append((ids, rng.integers(0, 5, 350)))
    assert flips.mean_churn(models) == pytest.approx(brute_churn(models), abs=1e-12)


def test_letters_group_the_conditions_the_tests_cannot_separate():
    means = {"a": 90.0, "b": 89.0, "c": 85.0, "d": 80.0}
    assert letter_groups(means, []) == {n: "a" for n in means}
    apart = [("a", "c"), ("a", "d"), ("b", "d")]
    assert letter_groups(means, apart) == {"a": "a", "b": "ab", "c": "bc", "d": "c"}
    every = list(itertools.combinations(means, 2))
    assert letter_groups(means, every) == {"a": "a", "b": "b", "c": "c", "d": "d"}
    assert letter_groups({}, []) == {}


def png_size(fig) -> tuple[int, int]:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    figures.plt.close(fig)
    return Image.open(buf).size


@pytest.mark.slow
@pytest.mark.parametrize("conditions, seeds", [(1, 3), (30, 3), (2, 300)])
def test_figures_keep_a_bounded_width_from_1_to_30_conditions(conditions, seeds):
    import pandas as pd

    rng = np.random.default_rng(0)
    names = [f"condition_number_{i}" for i in range(conditions)]
    passes = pd.DataFrame(
        [
            {
                "condition": c,
                "model": c,
                "run": f"{c}-{s}",
                "mode": m,
                "pass": p,
                "accuracy": 90 + rng.normal(),
            }
            for c in names
            for s in range(seeds)
            for m in ("eval", "train")
            for p in range(3)
        ]
    )
    curves = (
        passes[passes["mode"] == "eval"]
        .rename(columns={"pass": "epoch"})
        .assign(loss=1.0, acc=passes["accuracy"])
    )
    flip = pd.DataFrame(
        [
            {"condition": c, "mode": m, "flip_rate": 2.0, "churn_between_models": 5.0}
            for c in names
            for m in ("eval", "train")
        ]
    )
    diff = pd.DataFrame(rng.normal(size=(conditions, conditions)), index=names, columns=names)
    limit = int(figures.WIDTH * 110)
    for fig in (
        figures.accuracy_distribution(passes),
        figures.training_curves(curves),
        figures.flip_rates(flip),
        figures.comparison_matrix(diff, diff.abs() / 4),
    ):
        width, height = png_size(fig)
        assert width <= limit and height <= 2500, (fig.axes[0].get_title(), width, height)
