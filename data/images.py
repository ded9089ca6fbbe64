"""CIFAR-10 and a synthetic CIFAR-shaped set: uint8 tensors on the device, augmented a whole batch at a time."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from seedvar.data.core import (
    KNOWN_FINGERPRINTS,
    BatchLoader,
    DataError,
    Task,
    brief,
    check_bool,
    check_int,
    combine,
    data_root,
    fingerprint,
)

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_DIR = "cifar10/cifar-10-batches-py"
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)

CIFAR10_OPTIONS: dict[str, object] = {
    "pool": "standard",
    "train_size": None,
    "test_size": None,
    "augment": True,
}
SYNTHETIC_CIFAR_OPTIONS: dict[str, object] = {
    "n_train": 512,
    "n_test": 256,
    "num_classes": 10,
    "augment": True,
    "data_seed": 0,
}


def crop_flip(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding, then random horizontal flip, as one gather over the whole batch.

    Same result as torchvision's RandomCrop(padding=pad) + RandomHorizontalFlip per image, but with
    no per-image Python work; the offsets and flips are drawn on CPU so CPU and CUDA agree.
    """
    n, c, h, w = images.shape
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator).to(images.device)
    flips = torch.randint(0, 2, (n, 1), generator=generator).bool().to(images.device)
    padded = F.pad(images, (pad, pad, pad, pad)).view(n, c, -1)
    ar_h = torch.arange(h, device=images.device)
    ar_w = torch.arange(w, device=images.device)
    rows = shifts[:, :1] + ar_h
    cols = shifts[:, 1:] + torch.where(flips, w - 1 - ar_w, ar_w)
    flat = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return padded.gather(2, flat).view(n, c, h, w)


class ImageLoader(BatchLoader):
    """uint8 images (N, C, H, W) held on the device; crop/flip and normalization run on whole batches.

    mean and std are per channel, as fractions of 255 (CIFAR-10's published values by default).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        augment: bool,
        mean: tuple[float, ...] = MEAN,
        std: tuple[float, ...] = STD,
    ) -> None:
        super().__init__(labels)
        self.images = images
        self.augment = augment
        c = images.shape[1]
        if len(mean) != c or len(std) != c:
            raise DataError(f"normalization needs one mean and std per channel ({c}), got {mean} / {std}")
        self.mean = torch.tensor(mean, device=self.device).view(1, c, 1, 1) * 255
        self.inv_std = 1 / (torch.tensor(std, device=self.device).view(1, c, 1, 1) * 255)

    def _gather(self, idx: torch.Tensor, augment: torch.Generator | None) -> torch.Tensor:
        x = self.images[idx]
        if augment is not None and self.augment:
            x = crop_flip(x, augment)
        return x.float().sub_(self.mean).mul_(self.inv_std)


class _NumpyOnly(pickle.Unpickler):
    """CIFAR batches are pickles: allow only what rebuilds numpy arrays, so a file cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),  # the published files (Python 2, numpy 1)
        ("numpy._core.multiarray", "_reconstruct"),  # numpy 2, protocols 2-4
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # protocol 5
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes in protocol 2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python-version CIFAR batch as (data uint8 (N, 3072), labels int64 (N,)), checked by content."""
    try:
        with open(path, "rb") as f:
            batch = _NumpyOnly(f, encoding="latin1").load()
    except Exception as e:  # any unpickling failure means a damaged file
        raise DataError(
            f"cannot read CIFAR batch {path} ({brief(e)}): the file is truncated or corrupt; delete it and download again"
        ) from None
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise DataError(f"{path} is not a CIFAR-10 python batch: it needs the keys 'data' and 'labels'")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"CIFAR batch {path} holds data {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise DataError(
            f"CIFAR batch {path} holds labels {labels.dtype} {labels.shape}, expected {len(data)} integers"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"CIFAR batch {path} has labels outside 0..9 ({labels.min()}..{labels.max()})")
    return data, labels.astype(np.int64)


@functools.lru_cache(maxsize=2)
def _read_pool(
    files: tuple[tuple[str, int, int], ...], known: str
) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """Concatenated batches, their content sha256 and whether they match the published fingerprints;
    cached per file stamps."""
    parts = [read_batch(Path(p)) for p, _, _ in files]
    data, labels = np.concatenate([d for d, _ in parts]), np.concatenate([y for _, y in parts])
    shas = fingerprint(data), fingerprint(labels)
    verified = shas == (KNOWN_FINGERPRINTS[f"{known}/data"], KNOWN_FINGERPRINTS[f"{known}/labels"])
    return data, labels, combine(*shas), verified


def _stamped(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """Paths with mtime and size, so the cache reloads a file that changed."""
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)


def pick(labels: np.ndarray, size: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified draw of `size` indices and the rest (both sorted); None keeps everything."""
    n = len(labels)
    if size is None or size == n:
        return np.arange(n), np.arange(0)
    try:
        chosen, rest = train_test_split(np.arange(n), train_size=size, stratify=labels, random_state=seed)
    except ValueError as e:
        raise DataError(f"cannot draw a stratified sample of {size} from {n} images: {brief(e)}") from None
    return np.sort(chosen), np.sort(rest)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), as fractions of 255.

    Exact and cheap: from a 256-bin histogram per channel, with no float copy of the images.
    """
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise DataError(
            f"need uint8 images (N, C, H, W) with N >= 1 for normalization, got {images.dtype} {images.shape}"
        )
    values = np.arange(256, dtype=np.float64)
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = np.bincount(images[:, c].reshape(-1), minlength=256).astype(np.float64)
        mean = (hist @ values) / hist.sum()
        var = (hist @ (values - mean) ** 2) / hist.sum()
        means.append(float(mean / 255))
        stds.append(float(max(np.sqrt(var), 1.0) / 255))  # a constant channel must not divide by zero
    return tuple(means), tuple(stds)


def image_task(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    class_names: list[str],
    augment: bool,
    device: torch.device,
    info: dict[str, int | float | str],
    test_ids: np.ndarray,
    *,
    in_shape: tuple[int, int, int] = (3, 32, 32),
    stats: tuple[tuple[float, ...], tuple[float, ...]] = (MEAN, STD),
) -> Task:
    """A Task of uint8 images (rows of in_shape), normalized with `stats` (mean, std per channel)."""

    def loader(data: np.ndarray, labels: np.ndarray, aug: bool) -> ImageLoader:
        images = torch.from_numpy(data).view(-1, *in_shape).to(device)
        return ImageLoader(images, torch.from_numpy(labels).to(device), aug, *stats)

    return Task(
        name=name,
        kind="image",
        in_shape=tuple(in_shape),
        num_classes=len(class_names),
        class_names=class_names,
        label_ids=list(range(len(class_names))),
        train=loader(*train, augment),
        test=loader(*test, False),
        test_ids=np.asarray(test_ids, dtype=np.int64),
        info={"n_train": len(train[1]), "n_test": len(test[1]), **info},
    )


def check_cifar10_options(*, pool: object, train_size: object, test_size: object, augment: object) -> None:
    """Reject bad CIFAR-10 options before any file is read."""
    check_bool("augment", augment)
    if pool not in ("standard", "test_batch"):
        raise DataError(f"option pool must be 'standard' or 'test_batch', got {pool!r}")
    if pool == "test_batch" and (train_size is None or test_size is None):
        raise DataError(
            "pool='test_batch' needs both train_size and test_size (they split the 10,000 test images)"
        )
    for opt, value in (("train_size", train_size), ("test_size", test_size)):
        if value is not None:
            check_int(opt, value, 10, 50_000 if opt == "train_size" and pool == "standard" else 10_000)
    if pool == "test_batch" and train_size + test_size > 10_000:  # type: ignore[operator]
        raise DataError(
            f"train_size + test_size = {train_size + test_size} exceeds the 10,000 images of the test batch"  # type: ignore[operator]
        )


def cifar10_task(
    *,
    split_seed: int,
    root: str | Path | None,
    download: bool,
    device: torch.device,
    pool: str,
    train_size: int | None,
    test_size: int | None,
    augment: bool,
) -> Task:
    """CIFAR-10 from the python-version batches; pool='test_batch' splits the test batch alone."""
    check_cifar10_options(pool=pool, train_size=train_size, test_size=test_size, augment=augment)
    augment = bool(augment)

    folder = data_root(root) / CIFAR_DIR
    test_file = folder / "test_batch"
    train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
    needed = [test_file, *train_files] if pool == "standard" else [test_file]
    if download and not all(p.exists() for p in needed):
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(CIFAR_URL, str(folder.parent), md5=CIFAR_MD5)
        except Exception as e:  # network, disk and archive errors all end the same way for the user
            raise DataError(
                f"downloading {CIFAR_URL} failed ({brief(e)}): check the network or unpack it into {folder.parent}"
            ) from None
    if test_file.exists() and not all(p.exists() for p in train_files) and pool == "standard":
        raise DataError(
            f"CIFAR-10 training batches data_batch_1..5 are missing from {folder} (only the test batch is there): "
            f"get them from {CIFAR_URL} (download=True), point --data-root at a root holding them, or use pool='test_batch'"
        )
    if not test_file.exists():
        raise DataError(
            f"CIFAR-10 not found: expected {test_file}; get {CIFAR_URL} (download=True) or point --data-root at a root holding {CIFAR_DIR}"
        )

    test_x, test_y, test_sha, test_ok = _read_pool(_stamped([test_file]), "cifar10/test")
    content = test_sha
    if pool == "standard":
        train_x, train_y, train_sha, train_ok = _read_pool(_stamped(train_files), "cifar10/train")
        content = combine(train_sha, test_sha)
        tr, _ = pick(train_y, train_size, split_seed)
        te, _ = pick(test_y, test_size, split_seed)
        train, test, verified = (train_x[tr], train_y[tr]), (test_x[te], test_y[te]), test_ok and train_ok
        test_ids = te
    else:
        tr, rest = pick(test_y, train_size, split_seed)
        te, _ = pick(test_y[rest], test_size, split_seed)
        te = rest[te]
        train, test, verified = (test_x[tr], test_y[tr]), (test_x[te], test_y[te]), test_ok
        test_ids = te

    info = {
        "source": str(folder),
        "pool": pool,
        "verified": "sha256" if verified else "shape-only",
        "content_sha256": content,
        "fingerprint": combine(content, pool, tr, test_ids),
    }
    return image_task("cifar10", train, test, _cifar_classes(folder), augment, device, info, test_ids)


def _cifar_classes(folder: Path) -> list[str]:
    """Class names from batches.meta when it is readable, else the published list."""
    try:
        with open(folder / "batches.meta", "rb") as f:
            names = list(_NumpyOnly(f, encoding="latin1").load()["label_names"])
    except Exception:  # the meta file is optional: the published names are the fallback
        return list(CIFAR_CLASSES)
    return names if len(names) == 10 else list(CIFAR_CLASSES)


def synthetic_images(n: int, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-shaped uint8 images (n, 3072) whose class shows in tint and stripe texture under noise.

    The tint survives crops and flips, so a linear model learns it in a few dozen steps; the noise
    keeps single pixels uninformative.
    """
    rng = np.random.default_rng(seed)
    tint = rng.uniform(-1, 1, (num_classes, 3, 1, 1))
    freq = rng.uniform(0.2, 0.8, (num_classes, 1, 1))
    angle = rng.uniform(0, np.pi, (num_classes, 1, 1))
    yy, xx = np.mgrid[0:32, 0:32]
    stripes = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy))[:, None]
    templates = (128 + 40 * tint + 30 * stripes).astype(np.float32)
    labels = rng.permutation(np.arange(n) % num_classes)
    images = rng.standard_normal((n, 3, 32, 32), dtype=np.float32)
    images *= 40
    images += templates[labels]
    return np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(n, -1), labels.astype(np.int64)


def synthetic_cifar_task(
    *,
    split_seed: int,
    root: str | Path | None,
    download: bool,
    device: torch.device,
    n_train: int,
    n_test: int,
    num_classes: int,
    augment: bool,
    data_seed: int,
) -> Task:
    """A fixed CIFAR-shaped set from data_seed; split_seed draws nothing, so only training varies."""
    n_train, n_test = check_int("n_train", n_train, 1), check_int("n_test", n_test, 1)
    augment = check_bool("augment", augment)
    num_classes = check_int("num_classes", num_classes, 2, 1000)
    data, labels = synthetic_images(n_train + n_test, num_classes, check_int("data_seed", data_seed, 0))
    train = (data[:n_train], labels[:n_train])
    test = (data[n_train:], labels[n_train:])
    names = [f"class_{i}" for i in range(num_classes)]
    content, test_ids = combine(data, labels), np.arange(n_train, n_train + n_test)
    info = {
        "source": "synthetic",
        "data_seed": data_seed,
        "verified": "shape-only",
        "content_sha256": content,
        "fingerprint": combine(content, np.arange(n_train), test_ids),
    }
    return image_task("synthetic_cifar", train, test, names, augment, device, info, test_ids)
