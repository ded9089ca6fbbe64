"""Test modes: eval, train (the lab's mistake: dropout and batch statistics active) and MC dropout.

Everything before a model's first dropout is deterministic, so K stochastic passes can run that trunk
once per batch and only the head K times, each pass drawing its dropout masks from its own seeded
stream: exactly what K full passes with the same seeds give. seedvar's models declare the split
(`forward_features` / `forward_head`, tested for the zoo). Any other model is split where it declares
one or, for a chain of children (`nn.Sequential`-like), before the first child holding a dropout; the
split is then proved on the first batch (fused outputs and dropout streams == those of full passes)
and, failing that, the model is tested with K full passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import cohen_kappa_score, confusion_matrix
from torch import Tensor, nn

from seedvar.data import BatchLoader
from seedvar.engine.determinism import default_generator
from seedvar.nets.blocks import Net
from seedvar.results import EVAL, MC_DROPOUT, TRAIN
from seedvar.stats.flips import pass_accuracy


@contextlib.contextmanager
def test_mode(model: nn.Module, mode: str) -> Iterator[None]:
    """Put the model in a test mode; afterwards restore its flags and buffers, so testing never changes it.

    In `train` mode BatchNorm normalises with batch statistics and overwrites its running statistics:
    the buffers are saved and put back.
    """
    flags = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.clone()) for b in model.buffers()]
    if mode == EVAL:
        model.eval()
    elif mode == TRAIN:
        model.train()
    elif mode == MC_DROPOUT:
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


@dataclass(frozen=True)
class Split:
    """A model cut into a deterministic trunk and a head holding every dropout: forward(x) == head(trunk(x))."""

    trunk: Callable[[Tensor], Tensor]
    head: Callable[[Tensor], Tensor]
    where: str
    trusted: bool  # seedvar's own models: the split is part of their contract and tested, so not re-proved


def _is_dropout(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.dropout._DropoutNd)


def _chain(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The children in order, with plain nn.Sequential children opened up, so a split can fall inside them."""
    out = []
    for name, child in module.named_children():
        if type(child).forward is nn.Sequential.forward:
            out += _chain(child, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", child))
    return out


def _run(modules: list[nn.Module]) -> Callable[[Tensor], Tensor]:
    def forward(x: Tensor) -> Tensor:
        for m in modules:
            x = m(x)
        return x

    return forward


def find_split(model: nn.Module) -> Split | str:
    """Where K passes can share the trunk, or why they cannot (a one-line reason)."""
    if isinstance(model, Net):
        return Split(model.forward_features, model.forward_head, "forward_features/forward_head", True)
    if callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None)):
        return Split(model.forward_features, model.forward_head, "forward_features/forward_head", False)
    chain = _chain(model)
    first = next((i for i, (_, m) in enumerate(chain) if any(map(_is_dropout, m.modules()))), None)
    if first is None:
        return "no forward_features/forward_head and no dropout module among its children"
    if first == 0:
        return f"no forward_features/forward_head and its first child ({chain[0][0]}) holds a dropout"
    modules = [m for _, m in chain]
    where = f"children, before {chain[first][0]} ({type(modules[first]).__name__})"
    return Split(_run(modules[:first]), _run(modules[first:]), where, False)


@dataclass(frozen=True)
class Passes:
    """K passes over a test set: predicted classes (K, N), and how they were computed."""

    preds: np.ndarray
    fused: bool  # trunk once per batch, head once per pass
    split: str  # where the model was split, or why it was tested with full passes


def _same(a: Tensor, b: Tensor) -> bool:
    """Bit-identical with deterministic kernels; otherwise the rounding of nondeterministic ones is allowed."""
    if torch.are_deterministic_algorithms_enabled():
        return torch.equal(a, b)
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def run_passes(
    model: nn.Module,
    loader: BatchLoader,
    mode: str,
    seeds: list[int],
    batch_size: int,
    *,
    fused: bool = True,
) -> Passes:
    """len(seeds) passes over the loader in a test mode, pass p drawing its dropout masks from seeds[p].

    fused=False runs K complete forward passes (the plain way, and the reference the fused path equals).
    """
    device = loader.labels.device
    gen = default_generator(device)
    saved = gen.get_state()
    streams = []
    for s in seeds:
        gen.manual_seed(s)
        streams.append(gen.get_state())
    k = len(seeds)
    out = torch.empty((k, len(loader)), dtype=torch.int16, device=device)
    split = find_split(model) if fused else "full passes requested"
    use = split if isinstance(split, Split) else None
    prove = use is not None and not use.trusted
    reason = split if isinstance(split, str) else ""

    def heads(features: Tensor, keep: bool) -> tuple[list[Tensor], list[Tensor]]:
        logits, states = [], []
        for p in range(k):
            gen.set_state(streams[p])
            y = use.head(features)  # type: ignore[union-attr]
            logits.append(y if keep else y.argmax(1))
            states.append(gen.get_state())
        return logits, states

    def full(x: Tensor, keep: bool) -> tuple[list[Tensor], list[Tensor]]:
        logits, states = [], []
        for p in range(k):
            gen.set_state(streams[p])
            y = model(x)
            logits.append(y if keep else y.argmax(1))
            states.append(gen.get_state())
        return logits, states

    try:
        with test_mode(model, mode):
            i = 0
            for x, _ in loader.batches(batch_size):
                if use is not None and prove:  # first batch of an unproved split: both ways, compared
                    try:
                        fused_out, fused_states = heads(use.trunk(x), keep=True)
                    except Exception as e:  # children that do not chain (a reshape in forward, ...)
                        fused_out, fused_states = [], []
                        reason = f"split {use.where} failed on the first batch ({type(e).__name__})"
                    full_out, full_states = full(x, keep=True)
                    if fused_out and all(
                        _same(a, b) and torch.equal(sa, sb)
                        for a, b, sa, sb in zip(fused_out, full_out, fused_states, full_states, strict=True)
                    ):
                        preds, streams = [y.argmax(1) for y in fused_out], fused_states
                    else:
                        reason = reason or f"split {use.where} disproved on the first batch in {mode} mode"
                        use, preds, streams = None, [y.argmax(1) for y in full_out], full_states
                    prove = False
                elif use is not None:
                    preds, streams = heads(use.trunk(x), keep=False)
                else:
                    preds, streams = full(x, keep=False)
                for p in range(k):
                    out[p, i : i + len(x)] = preds[p]
                i += len(x)
    finally:
        gen.set_state(saved)
    if use is not None:
        return Passes(out.cpu().numpy(), True, use.where)
    return Passes(out.cpu().numpy(), False, reason)


def predict_passes(
    model: nn.Module,
    loader: BatchLoader,
    mode: str,
    seeds: list[int],
    batch_size: int,
    *,
    fused: bool = True,
) -> np.ndarray:
    """Predicted classes of len(seeds) passes over the loader, shape (K, N) (see run_passes)."""
    return run_passes(model, loader, mode, seeds, batch_size, fused=fused).preds


def pass_metrics(
    preds: np.ndarray, labels: np.ndarray, num_classes: int, per_class: bool
) -> dict[str, np.ndarray]:
    """Per-pass overall accuracy; with `per_class`, also average (per-class) accuracy, kappa, class accuracies."""
    metrics: dict[str, np.ndarray] = {"acc": pass_accuracy(preds, labels)}
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
