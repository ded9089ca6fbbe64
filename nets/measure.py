"""Measuring a built model: one forward pass on zeros that proves it takes its input, its parameters and
its multiply-accumulates. None of them draws a random number or changes the model."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seedvar.nets.entry import ModelError, brief


def probe(name: str, model: nn.Module, num_classes: int, in_shape: tuple[int, ...]) -> None:
    """One eval-mode forward on zeros, so a model that cannot take this input fails before a sweep starts.

    Eval mode draws no dropout masks and leaves BatchNorm statistics alone, and the input is zeros: the
    default generator and the model are as they were.
    """
    param = next(model.parameters(), None)
    x = torch.zeros(2, *in_shape, device=None if param is None else param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # shape mismatches surface here as RuntimeError from some layer
        raise ModelError(
            f"{name}: a forward pass on a batch of shape {tuple(x.shape)} failed: {brief(e)}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(
            f"{name}: a batch of shape {tuple(x.shape)} gives output {got}; expected logits of shape (2, {num_classes})"
        )


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one eval-mode forward on a batch of 1, counted by FlopCounterMode (MACs = FLOPs/2).

    The input is zeros, so counting does not consume random numbers from the default generator.
    """
    param = next(model.parameters(), None)
    x = torch.zeros(1, *in_shape, device=None if param is None else param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
