"""The report's pipeline on synthetic runs, without MLflow: tables, the answer's branches, rendering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.analysis import render, sentences, tables
from study.analysis.load import LoadedRun, StudyRuns
from study.analysis.report import build_sections
from study.record.schema import Predictions

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
        varied="all",
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


def test_accuracy_table_pools_every_pass_and_seed_spread():
    rng = np.random.default_rng(1)
    runs = [dropout_model(rng, r) for r in range(4)]
    t = tables.build(study(*runs))
    acc = t.accuracy.set_index(["condition", "mode"])
    every = np.concatenate([r.accuracy("train") for r in runs])
    assert acc.loc[("net", "train"), "mean"] == pytest.approx(every.mean())
    assert acc.loc[("net", "train"), "std"] == pytest.approx(every.std(ddof=1))
    means = [r.accuracy("eval").mean() for r in runs]
    assert acc.loc[("net", "eval"), "seed_std"] == pytest.approx(np.std(means, ddof=1))
    assert acc.loc[("net", "eval"), "passes"] == 8 and acc.loc[("net", "train"), "runs"] == 4
    vc = t.variance.set_index(["condition", "mode"])
    assert vc.loc[("net", "eval"), "within"] == 0  # eval passes are identical
    assert vc.loc[("net", "train"), "within"] > 0


def test_answer_when_train_mode_equals_mc_dropout():
    rng = np.random.default_rng(2)
    runs = [dropout_model(rng, r) for r in range(3)]
    (text,) = sentences.answer(runs, tables.build(study(*runs)))
    assert text.startswith("Train-mode test accuracy of net varies by")
    assert "MC dropout gives exactly the same passes" in text
    assert "MC-dropout test accuracy" not in text  # said once, not twice
    assert "In eval mode the same 3 models give identical results on every pass" in text


def test_answer_when_mc_dropout_differs_from_train_mode():
    rng = np.random.default_rng(3)
    runs = [dropout_model(rng, r, batchnorm=True) for r in range(3)]
    (text,) = sentences.answer(runs, tables.build(study(*runs)))
    assert "Train-mode test accuracy" in text and "MC-dropout test accuracy" in text
    assert "exactly the same passes" not in text


def test_answer_with_nondeterministic_eval_passes():
    rng = np.random.default_rng(4)
    runs = []
    for r in range(3):
        m = dropout_model(rng, r)
        m.preds.passes["eval"] = noisy(rng, 0.05, 2)  # two eval passes that disagree
        runs.append(m)
    (text,) = sentences.answer(runs, tables.build(study(*runs)))
    assert "of predictions still change between passes (nondeterministic kernels)" in text


def test_one_run_per_condition_and_a_failed_run():
    rng = np.random.default_rng(5)
    only = dropout_model(rng, 0)
    failed = run("net-r1", None, replicate=1, status="FAILED", failure="RuntimeError: out of memory")
    s = study(only, failed)
    t = tables.build(s)
    assert t.variance.empty and t.power.empty and t.comparisons.empty
    (text,) = sentences.answer(s.finished, t)
    assert "In eval mode the model gives identical results on every pass (accuracy" in text
    assert list(t.failures["reason"]) == ["RuntimeError: out of memory"]
    sections = {sec.title: sec for sec in build_sections(s)}
    assert sections["Variance components"].text == [
        "Variance components need at least two trained models and two passes per model."
    ]
    assert "failed_runs" in sections["Failed and unfinished runs"].tables
    md = render.render_markdown("r", list(sections.values()))
    assert "RuntimeError: out of memory" in md and "## The answer" in md


def test_two_conditions_are_compared_and_churn_is_between_models():
    rng = np.random.default_rng(6)
    runs = [dropout_model(rng, r, model="a") for r in range(3)] + [
        dropout_model(rng, r, model="b") for r in range(3)
    ]
    t = tables.build(study(*runs))
    assert list(t.comparisons[["a", "b"]].iloc[0]) == ["a", "b"]
    flips = t.flips.set_index(["condition", "mode"])
    assert flips.loc[("a", "eval"), "flip_rate"] == 0
    assert 0 < flips.loc[("a", "eval"), "churn_between_models"] < 100
    assert np.isnan(flips.loc[("a", "train"), "churn_between_models"])
    curves = t.curves
    assert set(curves.columns) >= {"condition", "run", "epoch", "loss", "acc"}
    assert curves["acc"].max() == pytest.approx(80.0)  # accuracy in points
    assert isinstance(t.settings, pd.DataFrame) and "seed.init" in set(t.settings["setting"])
