"""One run config, computed: load its data, build the model under the init seed, train, test every mode.

This is the composition of a run, written once: sweeps, tests and benchmarks all call it. It knows no
MLflow and writes no files; what happens around it (claims, resume, logging, checkpoints: the sweep
room's tracked run) hooks in through `Hooks`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import seedvar.data as data
import seedvar.nets as nets
from seedvar.engine.determinism import seeded, set_deterministic
from seedvar.engine.evaluate import pass_metrics, run_passes
from seedvar.engine.train import Trainer, weights_sha256
from seedvar.plan import RunConfig, pass_seeds
from seedvar.results import EVAL, EpochStats, ModeResult, Predictions, RunResult


class Hooks:
    """Called as a run goes; the default does nothing. The runner's hooks log and checkpoint."""

    def started(self, task: data.Task, epoch: int) -> None:
        """Data loaded and model built; `epoch` > 0 when resuming from a checkpoint."""

    def epoch(self, stats: EpochStats, trainer: Trainer) -> None:
        """An epoch ended (the trainer's state_dict() is a checkpoint of this moment)."""

    def testing(self) -> None:
        """Training is over; the test passes begin."""


def load_data(
    cfg: RunConfig,
    *,
    data_root: str | Path | None = None,
    download: bool = False,
    device: torch.device | str = "cpu",
) -> data.Task:
    """The run's dataset, split by its split seed."""
    return data.load_task(
        cfg.dataset,
        split_seed=cfg.seeds["split"],
        root=data_root,
        download=download,
        device=device,
        **cfg.dataset_options,
    )


def build_model(cfg: RunConfig, task: data.Task, device: torch.device | str = "cpu") -> nn.Module:
    """The model, initialised from the run's init seed alone.

    A user's model must still be the code the config was planned with: an edited source file would
    otherwise be trained and recorded under the old config's hash.
    """
    if cfg.model_source_sha256 is not None and nets.source_sha256(cfg.model) != cfg.model_source_sha256:
        raise nets.ModelError(
            f"{cfg.model}: its source file changed after the sweep was planned; run the sweep again"
        )
    device = torch.device(device)
    with seeded(cfg.seeds["init"], device):
        model = nets.build(cfg.model, task.num_classes, task.in_shape, **cfg.model_options)
    return model.to(device)


def train(
    cfg: RunConfig,
    task: data.Task,
    model: nn.Module,
    *,
    resume: dict[str, Any] | None = None,
    hooks: Hooks | None = None,
) -> list[EpochStats]:
    """Train to cfg.train.epochs (from a trainer checkpoint when given); the epochs run by this call."""
    hooks = hooks or Hooks()
    trainer = Trainer(model, task, cfg.train, cfg.seeds, torch.device(cfg.device))
    if resume is not None:
        trainer.load_state_dict(resume)
    hooks.started(task, trainer.epoch)
    epochs = []
    while trainer.epoch < cfg.train.epochs:
        stats = trainer.run_epoch()
        epochs.append(stats)
        hooks.epoch(stats, trainer)
    return epochs


def test_modes(
    model: nn.Module,
    loader: data.BatchLoader,
    *,
    modes: tuple[str, ...] | list[str],
    passes: int,
    eval_passes: int,
    test_seed: int,
    batch_size: int,
    num_classes: int,
    per_class: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, ModeResult]]:
    """Every requested mode of any trained model: (passes, pass seeds, mode results) per mode.

    Split out of `test` so a model seedvar did not train (seedvar.log_test_modes) is tested by the same
    code, with the same seeding rules: pass p of a stochastic mode draws from pass_seeds(test_seed)[p].
    Eval passes are complete forward passes, so "eval mode is deterministic" is measured, not assumed;
    stochastic modes run the trunk once per batch and the head once per pass where the model splits
    (see evaluate.run_passes), else K full passes.
    """
    labels = loader.labels.cpu().numpy()
    out, seeds_of, results = {}, {}, {}
    for mode in modes:
        k = eval_passes if mode == EVAL else passes
        seeds = pass_seeds(test_seed, k)
        start = time.perf_counter()
        run = run_passes(model, loader, mode, seeds, batch_size, fused=mode != EVAL)
        seconds = time.perf_counter() - start
        out[mode], seeds_of[mode] = run.preds, np.array(seeds, dtype=np.uint32)
        results[mode] = ModeResult(
            pass_metrics(run.preds, labels, num_classes, per_class=per_class),
            seconds,
            fused=run.fused if mode != EVAL else None,
            split=run.split,
        )
    return out, seeds_of, results


def test(cfg: RunConfig, task: data.Task, model: nn.Module) -> tuple[Predictions, dict[str, ModeResult]]:
    """Every requested mode of a run config's model: the predictions of each pass and its metrics."""
    passes, seeds_of, modes = test_modes(
        model,
        task.test,
        modes=cfg.test.modes,
        passes=cfg.test.passes,
        eval_passes=cfg.test.eval_passes,
        test_seed=cfg.seeds["test"],
        batch_size=cfg.test.batch_size,
        num_classes=task.num_classes,
        per_class=task.kind == "hyperspectral",
    )
    predictions = Predictions(
        labels=task.test.labels.cpu().numpy(),
        passes=passes,
        pass_seeds=seeds_of,
        ids=np.asarray(task.test_ids, np.int64),
        class_names=list(task.class_names),
        coords=task.test_coords,
        gt=task.gt,
        train_ids=None if task.train_ids is None else np.asarray(task.train_ids, np.int64),
    )
    return predictions, modes


@dataclass
class Trained:
    """A trained model with its data, and the epochs this call ran."""

    task: data.Task
    model: nn.Module
    epochs: list[EpochStats]


@contextlib.contextmanager
def run_settings(cfg: RunConfig) -> Iterator[None]:
    """The run's CPU threads (they change CPU results) and determinism flags; threads restored after."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(cfg.train.threads)
        set_deterministic(cfg.deterministic)
        yield
    finally:
        torch.set_num_threads(threads)


def _fit(
    cfg: RunConfig,
    *,
    data_root: str | Path | None,
    download: bool,
    resume: dict[str, Any] | None,
    hooks: Hooks | None,
) -> Trained:
    device = torch.device(cfg.device)
    task = load_data(cfg, data_root=data_root, download=download, device=device)
    model = build_model(cfg, task, device)
    epochs = train(cfg, task, model, resume=resume, hooks=hooks)
    return Trained(task, model, epochs)


def fit(
    cfg: RunConfig,
    *,
    data_root: str | Path | None = None,
    download: bool = False,
    resume: dict[str, Any] | None = None,
    hooks: Hooks | None = None,
) -> Trained:
    """Everything before testing: load the data, build the model under its init seed, train it."""
    with run_settings(cfg):
        return _fit(cfg, data_root=data_root, download=download, resume=resume, hooks=hooks)


def run(
    cfg: RunConfig,
    *,
    data_root: str | Path | None = None,
    download: bool = False,
    resume: dict[str, Any] | None = None,
    hooks: Hooks | None = None,
) -> RunResult:
    """Train and test one run config with its own seeds, threads and determinism setting."""
    hooks = hooks or Hooks()
    start = time.perf_counter()
    with run_settings(cfg):
        trained = _fit(cfg, data_root=data_root, download=download, resume=resume, hooks=hooks)
        sha = weights_sha256(trained.model)
        hooks.testing()
        predictions, modes = test(cfg, trained.task, trained.model)
    return RunResult(
        weights_sha256=sha,
        epochs=trained.epochs,
        predictions=predictions,
        modes=modes,
        data_info=dict(trained.task.info),
        seconds=time.perf_counter() - start,
    )
