"""What a sweep checks before it touches the store: the device, every dataset variant's data, every model
on that data. A bad input then changes nothing (one line, exit 2) instead of failing N runs."""

from __future__ import annotations

from pathlib import Path

import torch

import seedvar.data as data
import seedvar.nets as nets
from seedvar.engine import compute
from seedvar.errors import UserError
from seedvar.plan import RunConfig, Study


def resolve_device(requested: str) -> str:
    """auto -> cuda when available, else cpu; an unavailable cuda is the user's error, said plainly."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "CUDA was requested but this machine has no usable GPU (torch.cuda.is_available() is False): "
            "use --device cpu or --device auto"
        )
    return requested


def preflight(study: Study, configs: list[RunConfig], data_root: str | Path | None) -> None:
    """Load the first run's data of every dataset variant, build every model for it and run it once on
    zeros. A batch larger than the training set is refused too: it would train one step per epoch on a
    batch the spec does not say."""
    firsts: dict[str, RunConfig] = {}
    for c in configs:
        firsts.setdefault(c.variant, c)
    for cfg in firsts.values():
        where = f" ({cfg.variant})" if cfg.variant else ""
        try:
            task = compute.load_data(cfg, data_root=data_root, download=study.download)
        except data.DataError as exc:
            raise UserError(f"{study.source}: dataset{where}: {exc}") from None
        n_train = len(task.train)
        if study.train.batch_size > n_train:  # a slip (a full batch is batch_size = n_train), not a choice
            raise UserError(
                f"{study.source}: train.batch_size = {study.train.batch_size:,} exceeds the {n_train:,} training "
                f"samples of {cfg.dataset}{where}: use at most {n_train:,} (a full batch: one step per epoch)"
            )
        for model in study.models:
            first = next(c for c in configs if c.model == model and c.variant == cfg.variant)
            try:
                built = compute.build_model(first, task)
                nets.probe(model, built, task.num_classes, task.in_shape)
            except nets.ModelError as exc:
                reason = str(exc).removeprefix(f"{model}: ")
                raise UserError(
                    f"{study.source}: {model} cannot train on {cfg.dataset} {task.in_shape}: {reason}"
                ) from None
