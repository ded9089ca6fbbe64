"""The tracked run (sweeper/tracked.py) and the engine under it: seeds and determinism, test modes, MLflow
records, failures that do not stop a sweep, a run stopped before its first checkpoint taken up again."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch
from conftest import TINY_SCENE

import seedvar
import seedvar.data as data
import seedvar.nets as nets
from seedvar.engine import compute
from seedvar.engine.evaluate import predict_passes
from seedvar.engine.train import Trainer, weights_sha256
from seedvar.plan import expand, parse_study, pass_seeds
from seedvar.record import schema
from seedvar.record.checkpoint_store import checkpoints_for
from seedvar.record.reader import child_runs
from seedvar.record.store import Store
from seedvar.sweeper import tracked

HSI = {**TINY_SCENE, "train_fraction": 0.3}
TINY_CIFAR = {"name": "synthetic_cifar", "n_train": 64, "n_test": 48}


def study(name="t", dataset=HSI, models=("hybridsn",), epochs=2, replicates=2, **sections):
    raw = {
        "name": name,
        "models": list(models),
        "dataset": dict(dataset),
        "train": {"epochs": epochs, "batch_size": 32},
        "seeds": {"replicates": replicates},
        "test": {"passes": 4, "batch_size": 64},
        "device": "cpu",
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_study(raw)


def train_once(cfg):
    """Train one config through the engine, outside the tracker: weights hash and the trained model."""
    trained = compute.fit(cfg)
    return weights_sha256(trained.model), trained.model, trained.task


def test_the_engine_run_is_what_train_once_trains_and_what_a_sweep_logs(store_uri):
    cfg = expand(study(epochs=1, replicates=1), "cpu")[0]
    result = compute.run(cfg)
    assert result.weights_sha256 == train_once(cfg)[0]
    assert [e.epoch for e in result.epochs] == [1]
    assert set(result.predictions.modes) == {"eval", "train", "mc_dropout"}
    assert result.predictions.passes["train"].shape == (4, len(result.predictions.labels))
    assert result.summaries["eval"].acc_std == 0.0  # eval passes are complete passes, and identical
    logged = seedvar.sweep(
        study(name="engine", epochs=1, replicates=1), tracking_uri=store_uri, progress=False
    )
    assert logged.outcomes[0].weights_sha256 == result.weights_sha256


def test_same_seeds_same_weights_and_each_source_moves_them():
    base = expand(study(epochs=1), "cpu")[0]
    sha, _, _ = train_once(base)
    assert train_once(base)[0] == sha
    for source in ("split", "init", "order", "dropout"):
        moved = next(
            c for c in expand(study(epochs=1, seeds={"vary": [source]}), "cpu") if c.varied == source
        )
        assert {s for s in moved.seeds if moved.seeds[s] != base.seeds[s]} == {source}
        assert train_once(moved)[0] != sha, source


@pytest.mark.slow
def test_augment_seed_moves_the_weights_of_an_image_model():
    spec = study(
        dataset=TINY_CIFAR,
        models=("mobilenet_v2",),
        epochs=1,
        model_options={"mobilenet_v2": {"width": 0.25}},
    )
    base = expand(spec, "cpu")[0]
    sha, _, _ = train_once(base)
    assert train_once(base)[0] == sha
    augment = next(
        c
        for c in expand(
            study(
                dataset=TINY_CIFAR,
                models=("mobilenet_v2",),
                epochs=1,
                model_options={"mobilenet_v2": {"width": 0.25}},
                seeds={"vary": ["augment"]},
            ),
            "cpu",
        )
        if c.varied == "augment"
    )
    assert train_once(augment)[0] != sha


@pytest.fixture(scope="module")
def trained():
    cfg = expand(study(epochs=3), "cpu")[0]
    _, model, task = train_once(cfg)
    return model, task


@pytest.mark.slow
def test_eval_passes_identical_and_dropout_passes_differ(trained):
    model, task = trained
    seeds = pass_seeds(7, 4)
    ev = predict_passes(model, task.test, "eval", seeds, 64, fused=False)
    assert (ev == ev[0]).all()
    for mode in ("train", "mc_dropout"):
        preds = predict_passes(model, task.test, mode, seeds, 64)
        assert len({p.tobytes() for p in preds}) > 1, mode  # dropout masks differ between passes
        again = predict_passes(model, task.test, mode, seeds, 64)
        assert np.array_equal(preds, again)  # same seeds, same masks


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["train", "mc_dropout"])
def test_fused_k_passes_equal_k_full_passes(trained, mode):
    model, task = trained
    seeds = pass_seeds(11, 5)
    fused = predict_passes(model, task.test, mode, seeds, 50, fused=True)
    naive = predict_passes(model, task.test, mode, seeds, 50, fused=False)
    assert np.array_equal(fused, naive)


@pytest.mark.slow
def test_testing_never_changes_a_batchnorm_model():
    torch.manual_seed(0)
    task = data.load_task("synthetic_cifar", split_seed=0, n_train=32, n_test=40)
    model = nets.build("mobilenet_v2", 10, (3, 32, 32), width=0.25)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    for mode in ("train", "mc_dropout", "eval"):
        predict_passes(model, task.test, mode, pass_seeds(1, 3), 16)
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), mode
        assert not model.training  # flags restored too
    torch.manual_seed(0)
    # train mode must really use batch statistics (otherwise saving/restoring would prove nothing)
    x = next(task.test.batches(16))[0]
    with torch.no_grad():
        model.train()
        model.forward_features(x)
    assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sweep_logs_documented_params_metrics_tags_and_artifacts(store_uri, tmp_path):
    spec = study(name="logged", replicates=2)
    result = seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)
    assert [o.status for o in result.outcomes] == ["FINISHED", "FINISHED"]
    mlflow.set_tracking_uri(store_uri)
    df = mlflow.search_runs(
        experiment_names=["logged"], filter_string=schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN)
    )
    assert len(df) == 2 and set(df["status"]) == {"FINISHED"}
    row = df.iloc[0]
    for param in (
        "model",
        "dataset",
        "dataset.pca",
        "train.epochs",
        "train.lr",
        "test.passes",
        "deterministic",
        "seed.split",
        "seed.init",
        "seed.order",
        "seed.augment",
        "seed.dropout",
        "seed.test",
        "data.split",
        "data.leakage",
        "data.n_test",
    ):
        assert f"params.{param}" in df.columns, param
    assert (
        set(df["params.data.split"]) == {"random"} and (df["params.data.leakage"].astype(float) > 0.5).all()
    )
    for metric in (
        "train.loss",
        "train.acc",
        "train.samples_per_s",
        "test.eval.acc",
        "test.train.acc",
        "test.mc_dropout.acc",
        "test.train.acc_mean",
        "test.train.acc_std",
        "test.train.flip_rate",
        "test.eval.kappa",
        "test.train.aa",
        "test.train.class_acc.0",
    ):
        assert f"metrics.{metric}" in df.columns, metric
    for tag in (
        "config_hash",
        "weights_sha256",
        "torch",
        "cuda",
        "cudnn",
        "device_name",
        "model",
        "replicate",
    ):
        assert f"tags.{schema.TAG_PREFIX}{tag}" in df.columns, tag
    assert df[f"tags.{schema.TAG_WEIGHTS}"].nunique() == 2
    client = mlflow.MlflowClient(store_uri)
    run_id = row["run_id"]
    assert len(client.get_metric_history(run_id, "train.loss")) == 2
    assert [m.step for m in client.get_metric_history(run_id, "test.train.acc")] == [0, 1, 2, 3]
    assert {a.path for a in client.list_artifacts(run_id)} >= {
        "predictions.npz",
        "config.json",
        "environment.json",
    }
    path = client.download_artifacts(run_id, "predictions.npz", str(tmp_path))
    with np.load(path) as npz:
        assert npz["train"].shape == (4, len(npz["labels"])) and npz["eval"].shape[0] == 2
        acc = (npz["train"] == npz["labels"]).mean(1)
    steps = sorted(client.get_metric_history(run_id, "test.train.acc"), key=lambda m: m.step)
    assert np.allclose(acc, [m.value for m in steps])
    sweep = df[f"tags.{schema.TAG_SWEEP_RUN}"].unique()  # the sweep that trained them...
    assert len(sweep) == 1 and sweep[0] == result.parent_id
    (condition,) = Store(store_uri).search(df["experiment_id"][0], "tags.`seedvar.kind` = 'condition'")
    assert set(df["tags.mlflow.parentRunId"]) == {condition.info.run_id}  # ...and their condition's run


def test_rerun_trains_nothing_and_dry_run_reports_done(store_uri, capsys):
    spec = study(name="again", replicates=2, epochs=1)
    seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)
    again = seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)
    assert again.outcomes == [] and again.parent_id is None
    capsys.readouterr()
    seedvar.sweep(study(name="again", replicates=3, epochs=1), tracking_uri=store_uri, dry_run=True)
    out = capsys.readouterr().out
    assert "3 runs: 2 done, 1 pending" in out
    store = Store(store_uri)
    exp = store.experiment_id("again")
    assert (
        len(
            store.search(
                exp,
                "attributes.status = 'FINISHED' and " + schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN),
            )
        )
        == 2
    )


@pytest.mark.slow
def test_a_failing_run_does_not_stop_the_sweep(store_uri, monkeypatch):
    spec = study(name="mixed", replicates=3, epochs=1)
    victim = expand(spec, "cpu")[1]
    real = Trainer.run_epoch

    def flaky(self):  # the second replicate's training breaks in the middle of the sweep
        if self.order.initial_seed() == victim.seeds["order"]:
            raise RuntimeError("simulated out of memory")
        return real(self)

    monkeypatch.setattr(Trainer, "run_epoch", flaky)
    result = seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)  # in this process
    status = {o.run_name: o.status for o in result.outcomes}
    assert status == {
        "hybridsn-det-r00": "FINISHED",
        "hybridsn-det-r01": "FAILED",
        "hybridsn-det-r02": "FINISHED",
    }
    failed = result.failed[0]
    assert failed.reason == "RuntimeError: simulated out of memory"
    run = mlflow.MlflowClient(store_uri).get_run(failed.run_id)
    assert run.info.status == "FAILED" and run.data.tags[schema.TAG_FAILURE] == failed.reason
    monkeypatch.setattr(Trainer, "run_epoch", real)
    again = seedvar.sweep(
        spec, tracking_uri=store_uri, progress=False, jobs=1
    )  # a rerun retries only the failed one
    assert [(o.run_name, o.status) for o in again.outcomes] == [("hybridsn-det-r01", "FINISHED")]


def test_nan_loss_fails_the_run_with_its_reason(store_uri):
    spec = study(name="nan", replicates=1, epochs=2, train={"lr": 1e30, "optimizer": "sgd"})
    result = seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)
    assert result.outcomes[0].status == "FAILED"
    assert "loss became" in result.outcomes[0].reason


@pytest.mark.slow
@pytest.mark.parametrize("left", ["KILLED", "RUNNING"])  # Ctrl-C; a process that died (kill -9, power cut)
def test_a_run_stopped_before_its_first_checkpoint_trains_again_in_its_own_run(store_uri, monkeypatch, left):
    """No checkpoint to resume from: the run starts over, in the MLflow run it already has, and no KILLED or
    FAILED twin is left beside the finished one. Its epochs are logged once, its weights are a clean run's."""
    spec = study(name=f"early-{left.lower()}", replicates=1, epochs=3)
    (cfg,) = expand(spec, "cpu")
    real = tracked._Hooks.epoch

    def ctrl_c_after_epoch_2(self, stats, trainer):
        real(self, stats, trainer)
        if stats.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(tracked._Hooks, "epoch", ctrl_c_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):  # the sweep checkpoints after the last epoch, or after 60 s
        seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)
    monkeypatch.undo()
    store = Store(store_uri)
    (stopped,) = child_runs(store, store.experiment_id(spec.name), cfg.config_hash)
    assert stopped.status == "KILLED"
    if left == "RUNNING":  # as a process killed outright leaves it (no claim of a live process holds it)
        store.set_running(stopped.run_id)
    assert checkpoints_for(store, store.experiment_id(spec.name)).get(cfg.config_hash) is None
    result = seedvar.sweep(spec, tracking_uri=store_uri, progress=False, jobs=1)
    (outcome,) = result.outcomes
    assert outcome.status == "FINISHED" and outcome.run_id == stopped.run_id
    assert outcome.weights_sha256 == train_once(cfg)[0]
    (run,) = child_runs(store, store.experiment_id(spec.name), cfg.config_hash)  # no twin
    assert run.status == "FINISHED" and schema.TAG_FAILURE not in run.tags
    client = mlflow.MlflowClient(store_uri)
    assert [m.step for m in client.get_metric_history(run.run_id, "train.loss")] == [1, 2, 3]  # each once
    assert len(client.get_run(run.run_id).inputs.dataset_inputs) == 1
