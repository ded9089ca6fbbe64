"""Dataset names, their options with defaults, and load_task: the one entry point the study runner uses."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from seedvar.data.core import DataError, Task, as_device, check_int
from seedvar.data.hsi import (
    HSI_MAT_OPTIONS,
    HSI_OPTIONS,
    SYNTHETIC_HSI_OPTIONS,
    hsi_mat_task,
    scene_task,
    synthetic_hsi_task,
)
from seedvar.data.hsi import (
    check_options as check_hsi_options,
)
from seedvar.data.images import (
    CIFAR10_OPTIONS,
    SYNTHETIC_CIFAR_OPTIONS,
    check_cifar10_options,
    cifar10_task,
    synthetic_cifar_task,
)
from seedvar.data.scenes import SCENES
from seedvar.data.vision import (
    COMMON_OPTIONS,
    IMAGE_FOLDER_OPTIONS,
    PREFIX,
    image_folder_task,
    usable_classes,
    vision_class,
    vision_options,
    vision_task,
)

DATASETS: dict[str, tuple[Callable[..., Task], dict[str, object]]] = {
    "cifar10": (cifar10_task, CIFAR10_OPTIONS),
    "synthetic_cifar": (synthetic_cifar_task, SYNTHETIC_CIFAR_OPTIONS),
    **{name: (functools.partial(scene_task, name), HSI_OPTIONS) for name in SCENES},
    "hsi_mat": (hsi_mat_task, HSI_MAT_OPTIONS),
    "synthetic_hsi": (synthetic_hsi_task, SYNTHETIC_HSI_OPTIONS),
    "image_folder": (image_folder_task, IMAGE_FOLDER_OPTIONS),
}
_DESCRIPTIONS = {
    "cifar10": "CIFAR-10 python batches (50,000 + 10,000 images)",
    "synthetic_cifar": "CIFAR-shaped images drawn from data_seed (no files)",
    **{name: f"hyperspectral scene {name}" for name in SCENES},
    "hsi_mat": "any hyperspectral cube + ground truth as .mat files",
    "synthetic_hsi": "a hyperspectral scene drawn from data_seed (no files)",
    "image_folder": "torchvision ImageFolder: path/<class>/<image>",
}

_REQUIRED = {"image_folder": ("path",), "hsi_mat": ("cube_path", "gt_path")}


def list_datasets() -> list[str]:
    """Every fixed dataset name load_task accepts (beside torchvision:<Class>)."""
    return list(DATASETS)


def _unknown(name: str) -> DataError:
    close = [c for c in usable_classes() if c.lower() == str(name).lower()]
    hint = f" (did you mean '{PREFIX}{close[0]}'?)" if close else ""
    return DataError(
        f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, "
        f"or {PREFIX}<Class> for a torchvision dataset (`seedvar datasets` lists them){hint}"
    )


def dataset_options(name: str) -> dict[str, object]:
    """Option name -> default, so a study spec can be validated before anything is loaded."""
    if isinstance(name, str) and name.startswith(PREFIX):
        return vision_options(name.removeprefix(PREFIX))
    if name not in DATASETS:
        raise _unknown(name)
    return dict(DATASETS[name][1])


def check_options(name: str, options: dict[str, object]) -> None:
    """Check a dataset's options without reading any file: names, and the values that can be judged
    before loading (a dry run refuses what the sweep itself would). Raises DataError with one line."""
    defaults = dataset_options(name)
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise DataError(
            f"unknown option {unknown[0]!r} for dataset {name!r}; valid options: {', '.join(defaults) or 'none'}"
        )
    merged = {**defaults, **options}
    if name in SCENES or name in ("hsi_mat", "synthetic_hsi"):
        check_hsi_options(name, merged)
    elif name == "cifar10":
        check_cifar10_options(**{k: merged[k] for k in CIFAR10_OPTIONS})


@dataclass(frozen=True)
class DatasetRow:
    """One line of `seedvar datasets`."""

    name: str
    kind: str  # "built in" | "torchvision"
    about: str  # what it is (built in) or how it splits into train and test (torchvision)
    options: str


def _format(options: dict[str, object], required: tuple[str, ...] = ()) -> str:
    shown = [
        *(f"{k}=<required>" for k in required),
        *(f"{k}={v!r}" for k, v in options.items() if k not in required),
    ]
    return ", ".join(shown) or "none"


def available_datasets() -> list[DatasetRow]:
    """Every dataset a study can name: the built-in ones, image_folder, and each usable torchvision class.

    For torchvision classes only their own options are shown (seedvar's common ones are the same for all).
    """
    rows = [
        DatasetRow(name, "built in", _DESCRIPTIONS[name], _format(options, _REQUIRED.get(name, ())))
        for name, (_, options) in DATASETS.items()
    ]
    for cls in usable_classes():
        vc = vision_class(cls)
        own = {k: v for k, v in vc.options.items() if k not in COMMON_OPTIONS}
        rows.append(DatasetRow(f"{PREFIX}{cls}", "torchvision", vc.split_text, _format(own, vc.required)))
    return rows


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
    if name.startswith(PREFIX):
        loader: Callable[..., Task] = functools.partial(vision_task, name.removeprefix(PREFIX))
    else:
        loader = DATASETS[name][0]
    return loader(
        split_seed=int(split_seed),
        root=root,
        download=download,
        device=as_device(device),
        **{**defaults, **options},
    )
