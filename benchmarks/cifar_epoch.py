"""CIFAR epoch time: one training epoch of every registered image model with the lab's recipe.

Recipe as in studies/cifar_lightweight.toml: Adam 1e-3, batch 128, random crop (4-pixel padding) +
horizontal flip done by seedvar's loader on the device, images resident on the device, the study's
determinism setting. Data: the real CIFAR-10 training batches when the data root holds them, else
synthetic_cifar with 50,000 training images (timing does not depend on pixel content). Each model is
timed over a few batches after warm-up and extrapolated to a full epoch of the training set; on CUDA
also with bf16 autocast, and bf16 + channels_last. Meant for --device cuda (about 2 minutes); on a
CPU an epoch of SENet18 takes ~14 minutes, so the CPU figures are extrapolated from 2 batches.

    .venv/bin/python benchmarks/cifar_epoch.py --device cuda [--data-root ../shared/datasets]
    .venv/bin/python benchmarks/cifar_epoch.py --quick      # CPU: tiny batches, checks that it runs
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

EPOCH_IMAGES = 50_000  # CIFAR-10's training set: what an epoch means in the printed figures


def image_models() -> list[str]:
    """Every registered model that takes (3, H, W) images: all but HybridSN."""
    import seedvar.nets as nets

    return [m for m in nets.list_models() if len(nets.model_info(m).default_in_shape) == 3]


def cifar_train(data_root: str, device: Any, n_synthetic: int) -> tuple[Any, str]:
    """The CIFAR-10 training set on the device, or synthetic images of the same shape."""
    import seedvar.data as data

    try:
        task = data.load_task("cifar10", split_seed=0, root=data_root, device=device, pool="standard")
        return task, f"CIFAR-10 training set ({len(task.train)} images)"
    except data.DataError:
        task = data.load_task("synthetic_cifar", split_seed=0, device=device, n_train=n_synthetic, n_test=10)
        return (
            task,
            f"synthetic_cifar, {len(task.train)} training images (no CIFAR-10 training batches under the data root)",
        )


def endless(loader: Any, batch_size: int) -> Iterator[tuple[Any, Any]]:
    """Training batches epoch after epoch, with the recipe's order and augmentation generators."""
    import torch

    order, augment = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    while True:
        yield from loader.batches(batch_size, order=order, augment=augment)


def time_model(
    name: str, task: Any, device: Any, spec: Any, variant: str, warmup: int, batches: int
) -> float:
    """Seconds per training batch (loader, forward, backward, Adam step) of one model in one variant."""
    import torch
    import torch.nn.functional as F

    import seedvar.nets as nets

    bf16 = variant.startswith("bf16")
    channels_last = variant.endswith("channels_last")
    torch.manual_seed(0)
    model = nets.build(name, task.num_classes, task.in_shape, **spec.model_options.get(name, {})).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=spec.train.lr, weight_decay=spec.train.weight_decay)
    it = endless(task.train, spec.train.batch_size)

    def step() -> None:
        x, y = next(it)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    seconds, _ = c.timed(lambda: [step() for _ in range(batches)], device)
    return seconds / batches


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument("--models", help="comma-separated models (default: every image model)")
    p.add_argument("--batches", type=int, help="timed batches per model and variant (CUDA 30, CPU 2)")
    p.add_argument("--warmup", type=int, help="untimed batches first (CUDA 10, CPU 1)")
    args = p.parse_args(argv)
    device = c.device_or_exit(args.device)
    from seedvar.engine.determinism import set_deterministic

    overrides: dict[str, Any] = {"device": device.type}
    if args.quick:
        overrides["train.batch_size"] = 4
    spec = c.study_spec("cifar_lightweight", overrides)
    set_deterministic(spec.deterministic[0])
    cuda = device.type == "cuda"
    warmup = args.warmup or (10 if cuda else 1)
    batches = args.batches or (30 if cuda else 1 if args.quick else 2)
    models = args.models.split(",") if args.models else image_models()
    variants = ["fp32", "bf16", "bf16+channels_last"] if cuda else ["fp32"]
    task, source = cifar_train(args.data_root, device, 64 if args.quick else EPOCH_IMAGES)
    bs = spec.train.batch_size
    c.info(
        f"cifar_epoch: {source}; batch {bs}, Adam {spec.train.lr:g}, crop+flip on {device}, "
        f"deterministic {spec.deterministic[0]}; {batches} timed batches after {warmup} warm-up per model "
        f"and variant, extrapolated to a {EPOCH_IMAGES:,}-image epoch"
    )
    for name in models:
        parts = []
        for variant in variants:
            per_batch = time_model(name, task, device, spec, variant, warmup, batches)
            epoch, rate = per_batch * EPOCH_IMAGES / bs, bs / per_batch
            label = "" if variant == "fp32" else f"{variant} "
            parts.append(f"{label}{epoch:.1f} s/epoch, {rate:,.0f} img/s")
        c.info(f"cifar_epoch {name}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
