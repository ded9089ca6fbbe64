"""seedvar.log_test_modes on a model trained in a plain PyTorch loop: logged in seedvar's schema,
the model left bit for bit as it came, bad input refused with nothing logged."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch
from torch import nn

import seedvar
from seedvar.errors import TestModesError
from seedvar.record import schema as s


def _mlp(dropout: float = 0.5, bn: bool = True) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(8, 16)]
    if bn:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3)] if dropout else [nn.ReLU(), nn.Linear(16, 3)]
    return nn.Sequential(*layers)


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    mlflow.set_tracking_uri(new_store(tmp_path_factory.mktemp("own")))
    mlflow.set_experiment("own")
    yield
    mlflow.set_tracking_uri("")


def _data(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.slow
def test_logs_modes_and_leaves_model_unchanged(store) -> None:
    model = _mlp()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    with mlflow.start_run() as run:
        mlflow.log_param("dropout", 0.5)
        preds = seedvar.log_test_modes(model, loader, passes=5)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert preds.passes["train"].shape == (5, 60)
    assert (preds.passes["eval"][0] == preds.passes["eval"][1]).all()
    got = mlflow.get_run(run.info.run_id)
    assert got.data.tags[s.TAG_KIND] == s.KIND_TESTED
    assert got.data.params[s.PARAM_TEST_SIZE] == "60"
    assert got.data.params["dropout"] == "0.5"
    assert s.test_metric("train", "acc_mean") in got.data.metrics
    arts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
    assert s.ARTIFACT_PREDICTIONS in arts
    # the same seeds give the same passes: seedvar's seeding rules, whatever the global RNG
    with mlflow.start_run():
        again = seedvar.log_test_modes(model, (x, y), passes=5)
    assert np.array_equal(again.passes["train"], preds.passes["train"])


@pytest.mark.parametrize(
    "case, match",
    [
        ("no_run", "no active MLflow run"),
        ("no_dropout", "train mode equals eval mode"),
        ("unlabelled", "unlabelled"),
        ("mismatch", "inputs but"),
    ],
)
def test_bad_input_logs_nothing(store, case: str, match: str) -> None:
    x, y = _data()
    model = _mlp(dropout=0.0, bn=False) if case == "no_dropout" else _mlp()
    data: object = (x, y)
    if case == "unlabelled":
        data = [(xb,) for xb in x.split(16)]
    if case == "mismatch":
        data = (x, y[:-1])
    if case == "no_run":
        with pytest.raises(TestModesError, match=match):
            seedvar.log_test_modes(model, data)
        return
    with mlflow.start_run() as run, pytest.raises(TestModesError, match=match):
        seedvar.log_test_modes(model, data)
    got = mlflow.get_run(run.info.run_id)
    assert s.TAG_KIND not in got.data.tags and not got.data.metrics


@pytest.mark.slow
def test_lightning_callback_logs_to_the_loggers_run(tmp_path) -> None:
    """trainer.test with TestModes: the MLFlowLogger's run carries seedvar's predictions and kind tag."""
    pl = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import MLFlowLogger

    from seedvar.lightning import TestModes

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _mlp(bn=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def test_step(self, batch, _):  # noqa: ANN001
            self.log("acc", (self(batch[0]).argmax(1) == batch[1]).float().mean())

    x, y = _data()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    logger = MLFlowLogger("lit", tracking_uri=uri)
    cb = TestModes(passes=3)
    trainer = pl.Trainer(logger=logger, callbacks=[cb], enable_progress_bar=False, enable_model_summary=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    trainer.test(Net(), loader, verbose=False)
    assert cb.predictions.passes["train"].shape == (3, 60)
    run = mlflow.MlflowClient(uri).get_run(logger.run_id)
    assert run.data.tags[s.TAG_KIND] == s.KIND_TESTED


@pytest.mark.slow
def test_cli_by_without_metric_reports_tested_runs(store, tmp_path) -> None:
    """`seedvar report --experiment X --by dropout` on runs tested by log_test_modes: the whole report."""
    from seedvar.cli import main

    x, y = _data(90)
    mlflow.set_experiment("own_cli")
    for dropout in (0.2, 0.5):
        for seed in range(3):
            torch.manual_seed(seed)
            model = _mlp(dropout, bn=False)
            for p in model.parameters():  # distinct seeds, distinct models
                p.data += 0.1 * torch.randn_like(p)
            with mlflow.start_run():
                mlflow.log_params({"dropout": dropout, "seed": seed})
                seedvar.log_test_modes(model, (x, y), passes=4)
    out = tmp_path / "rep"
    rc = main(
        [
            "report",
            "--tracking-uri",
            mlflow.get_tracking_uri(),
            "--experiment",
            "own_cli",
            "--by",
            "dropout",
            "--out",
            str(out),
            "--no-cache",
        ]
    )
    assert rc in (0, None)
    md = (out / "report.md").read_text()
    assert "dropout=0.5" in md and "dropout=0.2" in md and "dropout_share" in md and "flip_rate" in md
    rc = main(
        [
            "report",
            "--tracking-uri",
            mlflow.get_tracking_uri(),
            "--experiment",
            "own_cli",
            "--by",
            "depth",
            "--out",
            str(tmp_path / "bad"),
        ]
    )
    assert rc == 2


@pytest.mark.slow
def test_examples_run_and_report(tmp_path) -> None:
    """examples/own_loop: the plain loop's six runs and the Lightning runs, each reported by dropout."""
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent.parent / "examples" / "own_loop"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    subprocess.run(
        [sys.executable, str(here / "report.py"), "--tracking-uri", uri, "--out", str(tmp_path / "r")],
        check=True,
        cwd=here,
        capture_output=True,
    )
    assert "dropout=0.5" in (tmp_path / "r" / "report.md").read_text()
    pytest.importorskip("lightning")
    subprocess.run(
        [
            sys.executable,
            str(here / "lightning_digits.py"),
            "--tracking-uri",
            uri,
            "--seeds",
            "2",
            "--epochs",
            "2",
        ],
        check=True,
        cwd=here,
        capture_output=True,
    )
    rep = seedvar.report("own_loop_lightning", tmp_path / "l", by="dropout", tracking_uri=uri)
    assert "dropout=0.1" in "\n".join(rep.answer)
