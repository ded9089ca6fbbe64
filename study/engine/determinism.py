"""The torch side of the sources of randomness: seeded blocks, the dropout generator, deterministic kernels."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def prepare_cuda_env() -> None:
    """cuBLAS reads its workspace setting when CUDA starts, so this must run before any CUDA call."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def set_deterministic(flag: bool) -> None:
    """Deterministic kernels (bit-identical reruns) or cuDNN's fastest, possibly nondeterministic ones."""
    prepare_cuda_env()
    torch.use_deterministic_algorithms(flag)
    torch.backends.cudnn.deterministic = flag
    torch.backends.cudnn.benchmark = not flag


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Run a block under its own seed without disturbing the global generators outside it."""
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def default_generator(device: torch.device) -> torch.Generator:
    """The global generator that dropout draws from on this device."""
    if device.type == "cuda":
        return torch.cuda.default_generators[
            device.index if device.index is not None else torch.cuda.current_device()
        ]
    return torch.default_generator
