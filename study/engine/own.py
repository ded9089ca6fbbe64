"""A user's own trained model and test data, made testable by seedvar's engine.

A model trained in someone's own loop (or Lightning) is tested by the same `compute.test_modes` as
seedvar's own runs; this module only turns their test data (a DataLoader of (x, y) batches or a pair of
tensors) into the engine's in-memory loader, and checks what would make the answer wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from seedvar.data import BatchLoader


class OwnDataError(ValueError):
    """Test data or a model the engine cannot test as given (the API maps it to TestModesError)."""


class TensorLoader(BatchLoader):
    """A test set held as tensors on the model's device, served in order."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(labels)
        self.x = x

    def _gather(self, idx: torch.Tensor, augment: torch.Generator | None) -> torch.Tensor:
        return self.x[idx]


def collect(data: Any, device: torch.device) -> TensorLoader:
    """The whole test set from a DataLoader of (x, y) batches or an (x, y) pair of tensors, on `device`."""
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        xs, ys = [data[0]], [data[1]]
    elif isinstance(data, Iterable):
        xs, ys = [], []
        for batch in data:
            if (
                not isinstance(batch, tuple | list)
                or len(batch) < 2
                or not isinstance(batch[1], torch.Tensor)
            ):
                raise OwnDataError(
                    "the test loader must yield labelled (x, y) batches; it yields unlabelled ones"
                )
            xs.append(batch[0])
            ys.append(batch[1])
    else:
        raise OwnDataError(
            f"test data must be a DataLoader of (x, y) batches or an (x, y) pair, not {type(data).__name__}"
        )
    if not xs:
        raise OwnDataError("the test data is empty")
    x = torch.cat([t.detach() for t in xs]).to(device)
    y = torch.cat([t.detach() for t in ys]).to(device)
    if y.ndim != 1 or y.dtype.is_floating_point:
        raise OwnDataError("the labels must be a 1-d tensor of class indices")
    if len(x) != len(y):
        raise OwnDataError(f"{len(x)} inputs but {len(y)} labels in the test data")
    return TensorLoader(x.float() if not x.is_floating_point() else x, y.long())


def model_device(model: nn.Module) -> torch.device:
    """The one device the model's parameters live on."""
    devices = {p.device for p in model.parameters()} | {b.device for b in model.buffers()}
    if len(devices) != 1:
        raise OwnDataError(f"the model's tensors are on {len(devices)} devices; seedvar tests a model on one")
    return devices.pop()


def is_stochastic(model: nn.Module) -> bool:
    """Whether train mode can differ from eval mode: the model holds a dropout or a normalisation with
    running statistics."""
    return any(
        isinstance(m, nn.modules.dropout._DropoutNd | nn.modules.batchnorm._BatchNorm)
        for m in model.modules()
    )


def digest(loader: TensorLoader) -> str:
    """The sha256 of the test set (inputs and labels), so runs on the same test set can be told as such."""
    h = hashlib.sha256()
    for t in (loader.x, loader.labels):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def snapshot(model: nn.Module) -> tuple[list[tuple[nn.Module, bool]], dict[str, torch.Tensor]]:
    """The model's mode flags and state, to prove (and restore) that testing leaves it as it came."""
    return [(m, m.training) for m in model.modules()], {
        k: v.detach().clone() for k, v in model.state_dict().items()
    }
