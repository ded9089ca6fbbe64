"""Dataset names, their options with defaults, and load_task: the one entry point the study runner uses."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch

from data.core import DataError, Task, as_device, check_int
from data.hsi import (
    HSI_MAT_OPTIONS,
    HSI_OPTIONS,
    SCENES,
    SYNTHETIC_HSI_OPTIONS,
    hsi_mat_task,
    scene_task,
    synthetic_hsi_task,
)
from data.images import CIFAR10_OPTIONS, SYNTHETIC_CIFAR_OPTIONS, cifar10_task, synthetic_cifar_task

DATASETS: dict[str, tuple[Callable[..., Task], dict[str, object]]] = {
    "cifar10": (cifar10_task, CIFAR10_OPTIONS),
    "synthetic_cifar": (synthetic_cifar_task, SYNTHETIC_CIFAR_OPTIONS),
    **{name: (functools.partial(scene_task, name), HSI_OPTIONS) for name in SCENES},
    "hsi_mat": (hsi_mat_task, HSI_MAT_OPTIONS),
    "synthetic_hsi": (synthetic_hsi_task, SYNTHETIC_HSI_OPTIONS),
}


def list_datasets() -> list[str]:
    """Every dataset name load_task accepts."""
    return list(DATASETS)


def dataset_options(name: str) -> dict[str, object]:
    """Option name -> default, so a study spec can be validated before anything is loaded."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return dict(DATASETS[name][1])


def load_task(
    name: str,
    *,
    split_seed: int,
    root: str | Path | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
    **options: object,
) -> Task:
    """Load a dataset as a Task; split_seed (in [0, 2**32)) alone decides the train/test split."""
    defaults = dataset_options(name)
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise DataError(
            f"unknown option {unknown[0]!r} for dataset {name!r}; valid options: {', '.join(defaults) or 'none'}"
        )
    check_int("split_seed", split_seed, 0, 2**32 - 1)
    loader = DATASETS[name][0]
    return loader(
        split_seed=int(split_seed),
        root=root,
        download=download,
        device=as_device(device),
        **{**defaults, **options},
    )
