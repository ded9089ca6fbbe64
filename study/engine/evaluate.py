"""Test modes: eval, train (the lab's mistake: dropout and batch statistics active) and MC dropout.

Everything before a model's first dropout is deterministic, so K stochastic passes run the trunk
(`forward_features`) once per batch and only the head K times, each pass drawing its dropout masks
from its own seeded stream. The result is exactly what K full passes with the same seeds give.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.metrics import cohen_kappa_score, confusion_matrix
from torch import nn

from data import BatchLoader
from study.engine.determinism import default_generator


@contextlib.contextmanager
def test_mode(model: nn.Module, mode: str) -> Iterator[None]:
    """Put the model in a test mode; afterwards restore its flags and buffers, so testing never changes it.

    In `train` mode BatchNorm normalises with batch statistics and overwrites its running statistics:
    the buffers are saved and put back.
    """
    flags = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.clone()) for b in model.buffers()]
    if mode == "eval":
        model.eval()
    elif mode == "train":
        model.train()
    elif mode == "mc_dropout":
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.train()
    else:
        raise ValueError(f"unknown test mode {mode!r}")
    try:
        with torch.no_grad():
            yield
    finally:
        for m, flag in flags:
            m.training = flag
        for b, saved in buffers:
            b.copy_(saved)


def predict_passes(
    model: nn.Module,
    loader: BatchLoader,
    mode: str,
    seeds: list[int],
    batch_size: int,
    *,
    fused: bool = True,
) -> np.ndarray:
    """Predicted classes of len(seeds) passes over the loader, shape (K, N).

    fused=True runs the trunk once per batch and the head once per pass; fused=False runs K complete
    forward passes (the plain way, kept as the reference that the fused path must equal).
    """
    device = loader.labels.device
    gen = default_generator(device)
    saved = gen.get_state()
    streams = []
    for s in seeds:
        gen.manual_seed(s)
        streams.append(gen.get_state())
    out = torch.empty((len(seeds), len(loader)), dtype=torch.int16, device=device)
    try:
        with test_mode(model, mode):
            if fused:
                i = 0
                for x, _ in loader.batches(batch_size):
                    features = model.forward_features(x)
                    for p in range(len(seeds)):
                        gen.set_state(streams[p])
                        out[p, i : i + len(x)] = model.forward_head(features).argmax(1)
                        streams[p] = gen.get_state()
                    i += len(x)
            else:
                for p in range(len(seeds)):
                    gen.set_state(streams[p])
                    i = 0
                    for x, _ in loader.batches(batch_size):
                        out[p, i : i + len(x)] = model(x).argmax(1)
                        i += len(x)
    finally:
        gen.set_state(saved)
    return out.cpu().numpy()


def pass_metrics(
    preds: np.ndarray, labels: np.ndarray, num_classes: int, per_class: bool
) -> dict[str, np.ndarray]:
    """Per-pass overall accuracy; with `per_class`, also average (per-class) accuracy, kappa, class accuracies."""
    metrics: dict[str, np.ndarray] = {"acc": (preds == labels[None, :]).mean(axis=1)}
    if per_class:
        classes = np.arange(num_classes)
        cms = [confusion_matrix(labels, p, labels=classes) for p in preds]
        support = np.bincount(labels, minlength=num_classes)
        tested = support > 0  # a spatial split can leave a class without test pixels: nan, not 0
        class_acc = np.stack([np.diag(cm) / np.maximum(support, 1) for cm in cms])  # (K, C)
        class_acc[:, ~tested] = np.nan
        metrics["aa"] = class_acc.mean(axis=1) if tested.all() else class_acc[:, tested].mean(axis=1)
        metrics["kappa"] = np.array([cohen_kappa_score(labels, p, labels=classes) for p in preds])
        metrics["class_acc"] = class_acc
    return metrics
