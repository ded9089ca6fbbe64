"""Loader throughput: seedvar's CIFAR-10 training loader against the lab's PIL pipeline, and HSI patches.

Both CIFAR loaders read the same images (the shared CIFAR-10 test batch, or synthetic images when it is
absent) with augmentation on and batch 128, measured in one run. The HSI line times seedvar's patch gather
for Indian Pines (PCA 30, window 25, batch 128; a synthetic scene of the same size when it is absent).
seedvar's loader runs with the run's thread count (train.threads, 1 by default); the lab pipeline gets its
2 DataLoader worker processes.

    .venv/bin/python benchmarks/loader.py [--data-root ../shared/datasets] [--device cpu|cuda] [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

import seedvar.data as data

BATCH = 128


class LabCifar(Dataset):
    """What torchvision.datasets.CIFAR10 does per item: HWC uint8 -> PIL -> transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        self.labels = labels.tolist()
        self.transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def throughput(epoch, seconds: float, device: torch.device) -> float:
    """Images/s over whole batches after one warm-up batch, for at least `seconds`."""
    n, start = 0, None
    while start is None or time.perf_counter() - start < seconds:
        for x, y in epoch():
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if start is None:  # skip start-up (worker spawn, first allocation)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                continue
            n += len(y)
            if time.perf_counter() - start >= seconds:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="0.3 s per measurement: checks that it runs")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads of this process (default 1, as a run trains)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.seconds = 0.3
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA requested (--device cuda) but torch.cuda.is_available() is False here", file=sys.stderr)
        sys.exit(2)
    device = torch.device(args.device)

    try:
        task = data.load_task(
            "cifar10",
            split_seed=0,
            root=args.data_root,
            device=device,
            pool="test_batch",
            train_size=9000,
            test_size=1000,
        )
        source = "CIFAR-10 test batch"
    except data.DataError as e:
        print(f"({e}; using synthetic images)")
        task = data.load_task("synthetic_cifar", split_seed=0, device=device, n_train=9000, n_test=1000)
        source = "synthetic images"
    loader = task.train
    order, augment = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    seedvar = throughput(lambda: loader.batches(BATCH, order=order, augment=augment), args.seconds, device)

    lab = LabCifar(loader.images.cpu().numpy(), loader.labels.cpu().numpy())
    dl = DataLoader(
        lab,
        batch_size=BATCH,
        shuffle=True,
        num_workers=2,
        pin_memory=device.type == "cuda",
        persistent_workers=True,
    )
    baseline = throughput(lambda: iter(dl), args.seconds, device)

    print(
        f"images: {len(loader)} from {source}, batch {BATCH}, device {device}, torch threads {torch.get_num_threads()}"
    )
    # the two pipelines do the same work: with augmentation off, the same tensors in the same order
    plain = transforms.Compose(lab.transform.transforms[2:])  # ToTensor + Normalize
    first = next(loader.batches(BATCH))[0].cpu()
    theirs = torch.stack([plain(Image.fromarray(lab.images[i])) for i in range(len(first))])
    same = torch.allclose(first, theirs, atol=1e-5)
    print(f"loader: batches equal the lab pipeline's ToTensor + Normalize (augmentation off): {same}")
    epoch = torch.cat([y for _, y in loader.batches(BATCH, order=order, augment=augment)]).sort().values
    every = torch.equal(epoch.cpu(), loader.labels.cpu().sort().values)
    print(f"loader: an augmented epoch serves every training image once: {every}")
    print(
        f"loader: seedvar {seedvar:,.0f} img/s, baseline {baseline:,.0f} img/s, ratio {seedvar / baseline:.1f}"
    )

    try:
        hsi = data.load_task("indian_pines", split_seed=0, root=args.data_root, device=device)
    except data.DataError:
        size = {"height": 145, "width": 145, "bands": 200, "num_classes": 16}
        hsi = data.load_task("synthetic_hsi", split_seed=0, device=device, pca=30, window=25, **size)
    patches = hsi.train
    rate = throughput(lambda: patches.batches(BATCH, order=order), args.seconds / 2, device)
    print(
        f"hsi: {hsi.name} {len(patches)} patches {hsi.in_shape}, batch {BATCH}, seedvar gather {rate:,.0f} patches/s"
    )


if __name__ == "__main__":
    main()
