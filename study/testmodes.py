"""`seedvar.log_test_modes`: a model trained anywhere (a plain loop, Lightning) tested in seedvar's modes
and logged to its MLflow run in seedvar's schema, so that `seedvar report` reads it as its own runs.

The engine tests (compute.test_modes, the same fused passes and seeding rules as a sweep), the record
room writes (recorder.log_tested); this module only checks the input and joins the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from seedvar.engine import compute, own
from seedvar.errors import TestModesError
from seedvar.record import schema as s
from seedvar.record.recorder import log_tested
from seedvar.record.store import Store
from seedvar.results import EVAL, MODES, Predictions, RunResult

DEFAULT_TEST_SEED = 0  # the test source's seed when the user names none (pass p draws pass_seeds(0)[p])


def log_test_modes(
    model: nn.Module,
    data: Any,
    *,
    passes: int = 10,
    modes: Sequence[str] = MODES,
    device: torch.device | str | None = None,
    run_id: str | None = None,
    test_seed: int = DEFAULT_TEST_SEED,
    batch_size: int = 256,
    class_names: Sequence[str] | None = None,
) -> Predictions:
    """Test `model` on `data` (a DataLoader of (x, y) batches or an (x, y) pair) in each mode with
    `passes` passes and log predictions, test.* metrics and the test set's size, classes and digest to
    the active MLflow run (or `run_id`). The model leaves as it came (mode, weights, BatchNorm buffers),
    and the global RNG state is restored. Raises TestModesError, logging nothing, on bad input."""
    import mlflow

    target = run_id or (mlflow.active_run().info.run_id if mlflow.active_run() else None)
    if target is None:
        raise TestModesError(
            "log_test_modes: no active MLflow run; call it inside mlflow.start_run() or pass run_id"
        )
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise TestModesError(
            f"log_test_modes: unknown mode(s) {bad or '(none)'}; choose from {', '.join(MODES)}"
        )
    if not isinstance(passes, int) or passes < 2:
        raise TestModesError(f"log_test_modes: passes must be an integer >= 2, got {passes!r}")
    if not own.is_stochastic(model) and any(m != EVAL for m in modes):
        raise TestModesError(
            "log_test_modes: the model has no dropout or BatchNorm, so train mode equals eval mode; "
            "test it with modes=('eval',)"
        )
    cpu_rng = torch.get_rng_state()  # a DataLoader draws its base seed from the global RNG
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        where = own.model_device(model)
        if device is not None and torch.device(device).type != where.type:
            raise own.OwnDataError(f"the model is on {where}, not on the requested device {device}")
        loader = own.collect(data, where)
    except own.OwnDataError as e:
        raise TestModesError(f"log_test_modes: {e}") from None
    finally:
        torch.set_rng_state(cpu_rng)
    logits_classes = _num_classes(model, loader)
    num_classes = max(logits_classes, int(loader.labels.max()) + 1)
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    if len(names) != num_classes:
        raise TestModesError(f"log_test_modes: {len(names)} class names for {num_classes} classes")

    flags, state = own.snapshot(model)
    try:
        passes_of, seeds_of, results = compute.test_modes(
            model,
            loader,
            modes=list(modes),
            passes=passes,
            eval_passes=2,
            test_seed=test_seed,
            batch_size=batch_size,
            num_classes=num_classes,
        )
    finally:
        for m, flag in flags:
            m.training = flag
        model.load_state_dict(state)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    labels = loader.labels.cpu().numpy()
    for mode, preds in passes_of.items():
        if preds.shape[1] != len(labels):
            raise TestModesError(
                f"log_test_modes: {preds.shape[1]} predictions in {mode} mode for {len(labels)} test samples"
            )
    predictions = Predictions(
        labels=labels,
        passes=passes_of,
        pass_seeds=seeds_of,
        ids=np.arange(len(labels), dtype=np.int64),
        class_names=names,
    )
    result = RunResult(
        weights_sha256="", epochs=[], predictions=predictions, modes=results, data_info={}, seconds=0.0
    )
    info = {
        s.PARAM_TEST_SIZE: str(len(labels)),
        s.PARAM_TEST_CLASSES: str(num_classes),
        s.PARAM_TEST_DIGEST: s.dataset_digest(own.digest(loader)),
        f"{s.PARAM_SEED_PREFIX}test": str(test_seed),
    }
    log_tested(Store(mlflow.get_tracking_uri()), target, result, info)
    return predictions


def _num_classes(model: nn.Module, loader: own.TensorLoader) -> int:
    """The classes the model scores: the width of its logits on the first test sample (eval mode, no grad)."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            out = model(loader.x[:1])
    finally:
        for m, flag in flags:
            m.training = flag
    if out.ndim != 2:
        raise TestModesError(
            f"log_test_modes: the model must return (batch, classes) logits, got shape {tuple(out.shape)}"
        )
    return int(out.shape[1])
