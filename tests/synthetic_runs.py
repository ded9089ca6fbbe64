"""Synthetic trained models for the report's tests, without MLflow: predictions over a fixed label set, with
the passes a test mode would give (eval identical, train and MC dropout differing)."""

from __future__ import annotations

import numpy as np

from seedvar.analysis.load import LoadedRun, StudyRuns
from seedvar.results import Predictions

N, CLASSES = 400, 4
LABELS = np.random.default_rng(0).integers(0, CLASSES, N)


def noisy(rng: np.random.Generator, error: float, k: int) -> np.ndarray:
    """k passes of predictions, each wrong on a fresh `error` share of the samples."""
    wrong = rng.random((k, N)) < error
    return np.where(wrong, (LABELS + 1) % CLASSES, LABELS).astype(np.int16)


def run(
    name: str,
    passes: dict[str, np.ndarray] | None,
    *,
    model: str = "net",
    deterministic: bool = True,
    replicate: int = 0,
    status: str = "FINISHED",
    failure: str = "",
    varied: str = "all",
) -> LoadedRun:
    preds = None
    if passes is not None:
        preds = Predictions(
            labels=LABELS,
            passes=passes,
            pass_seeds={m: np.arange(len(p), dtype=np.uint32) for m, p in passes.items()},
            ids=np.arange(N),
            class_names=[f"c{i}" for i in range(CLASSES)],
        )
    return LoadedRun(
        run_id=f"id-{name}",
        name=name,
        status=status,
        model=model,
        deterministic=deterministic,
        varied=varied,
        replicate=replicate,
        config_hash=f"hash-{name}",
        failure=failure,
        params={"model": model, "seed.init": str(replicate)},
        metrics={"time.total_seconds": 10.0},
        predictions=preds,
        curves={"loss": [(1, 1.0), (2, 0.5)], "acc": [(1, 0.6), (2, 0.8)]} if passes is not None else {},
    )


def dropout_model(
    rng: np.random.Generator, replicate: int, *, batchnorm: bool = False, model: str = "net"
) -> LoadedRun:
    """A trained model: eval passes identical; train and MC-dropout passes differ (equal unless BatchNorm)."""
    base = 0.05 + 0.02 * replicate
    ev = noisy(rng, base, 1)
    train = noisy(rng, base + 0.03, 6)
    mc = noisy(rng, base + 0.01, 6) if batchnorm else train.copy()
    return run(
        f"{model}-r{replicate}",
        {"eval": np.repeat(ev, 2, 0), "train": train, "mc_dropout": mc},
        model=model,
        replicate=replicate,
    )


def study(*runs: LoadedRun) -> StudyRuns:
    return StudyRuns("synthetic", list(runs), sweeps=1)
