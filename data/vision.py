"""Any torchvision image-classification dataset, and ImageFolder trees, as uint8 tensors on the device.

`torchvision:FashionMNIST` (any class of torchvision.datasets that yields image/label pairs) takes its
constructor's options; `image_folder` reads `path/<class>/<image>` through torchvision's ImageFolder.
Images are decoded once and cached on disk (`<data root>/decoded/<fingerprint>.npz`, keyed by the
sha256 of the source files and the decoding options), then served by the same batch loader and
crop/flip augmentation as CIFAR-10, normalized with per-channel statistics of the training images.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split

from seedvar.data.core import DataError, Task, brief, check_bool, check_int, data_root
from seedvar.data.decoded import MODES, Pools, cache_key, cached, decode, fingerprint_files
from seedvar.data.images import channel_stats, image_task, pick

PREFIX = "torchvision:"
# torchvision is imported in the functions that use it: importing it loads torch._dynamo too (about 1.7 s
# in every process), which a hyperspectral study never needs.

# Options every image dataset here takes (seedvar's, not the constructor's).
COMMON_OPTIONS: dict[str, object] = {
    "train_size": None,
    "test_size": None,
    "augment": True,
    "resize": None,
    "mode": None,
}
POOL_OPTIONS: dict[str, object] = {"test_fraction": 0.2}  # datasets with one pool: seedvar splits it
SPLIT_OPTIONS: dict[str, object] = {"train_split": "train", "test_split": "test"}  # datasets with `split`
IMAGE_FOLDER_OPTIONS: dict[str, object] = {
    "path": None,
    "test_path": None,
    **COMMON_OPTIONS,
    "mode": "RGB",
    **POOL_OPTIONS,
}
# options whose value is itself a list ([H, W]): a spec cannot mean them as a list of conditions
SEQUENCE_OPTIONS = frozenset({"resize"})

# Constructor arguments seedvar supplies itself (or that cannot come from a TOML spec).
MANAGED = {
    "root",
    "train",
    "transform",
    "target_transform",
    "transforms",
    "download",
    "loader",
    "is_valid_file",
    "allow_empty",
    "extensions",
}
# Classes of torchvision.datasets whose samples are not (image, class index): detection, segmentation,
# captions, pairs, video, optical flow and stereo. ImageFolder is `image_folder`; DatasetFolder needs a loader.
NOT_CLASSIFICATION = {
    "VisionDataset",
    "DatasetFolder",
    "ImageFolder",
    "CocoCaptions",
    "CocoDetection",
    "VOCSegmentation",
    "VOCDetection",
    "SBDataset",
    "Cityscapes",
    "CelebA",
    "WIDERFace",
    "SBU",
    "Flickr8k",
    "Flickr30k",
    "LFWPairs",
    "PhotoTour",
    "MovingMNIST",
    "Kitti",
    "LSUNClass",
    "Kinetics",
    "HMDB51",
    "UCF101",
    "KittiFlow",
    "Sintel",
    "FlyingChairs",
    "FlyingThings3D",
    "HD1K",
}


@dataclass(frozen=True)
class VisionClass:
    """A torchvision dataset class as seedvar drives it: how it splits, which options it takes."""

    name: str
    cls: type
    splits: str  # "train" (train=True/False), "split" (split="train"/"test") or "pool" (seedvar splits)
    ctor: dict[str, object]  # constructor options a spec may set -> default
    required: tuple[str, ...]  # constructor options without a default
    takes: frozenset[str]  # every constructor argument name (managed ones included)

    @property
    def options(self) -> dict[str, object]:
        extra = POOL_OPTIONS if self.splits == "pool" else SPLIT_OPTIONS if self.splits == "split" else {}
        return {**COMMON_OPTIONS, **extra, **self.ctor, **dict.fromkeys(self.required)}

    @property
    def split_text(self) -> str:
        if self.splits == "train":
            return "train=True / train=False"
        if self.splits == "split":
            return "split=train_split / test_split"
        return "one pool, split by test_fraction"


def _parameters(cls: type) -> list[inspect.Parameter]:
    """Constructor parameters, following **kwargs into the base classes (EMNIST passes train to MNIST)."""
    params: list[inspect.Parameter] = []
    seen: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init)
        for p in list(sig.parameters.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in seen:
                continue
            seen.add(p.name)
            params.append(p)
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return params


def _is_classification(name: str, cls: object) -> bool:
    import torchvision

    if not (inspect.isclass(cls) and issubclass(cls, torchvision.datasets.VisionDataset)):
        return False
    if name in NOT_CLASSIFICATION or name.endswith("Stereo"):
        return False
    names = {p.name for p in _parameters(cls)}
    return "frames_per_clip" not in names and ("transform" in names or name == "FakeData")


@functools.cache
def usable_classes() -> list[str]:
    """Names of the torchvision.datasets classes that yield (image, class index)."""
    import torchvision

    return sorted(
        (n for n in torchvision.datasets.__all__ if _is_classification(n, getattr(torchvision.datasets, n))),
        key=str.lower,
    )


def vision_class(name: str) -> VisionClass:
    """The class behind `torchvision:<name>`, or a one-line DataError naming the close ones."""
    import torchvision

    usable = usable_classes()
    if not isinstance(name, str) or name not in usable:
        if name in torchvision.datasets.__all__:
            raise DataError(
                f"torchvision:{name} does not yield (image, class index) pairs, so seedvar cannot train on it; "
                "`seedvar datasets` lists the ones it can"
            )
        close = difflib.get_close_matches(name, usable, n=1) or [
            u for u in usable if u.lower() == name.lower()
        ]
        hint = f" (did you mean 'torchvision:{close[0]}'?)" if close else ""
        raise DataError(
            f"torchvision {torchvision.__version__} has no dataset {name!r}{hint}; `seedvar datasets` lists them"
        )
    cls = getattr(torchvision.datasets, name)
    params = _parameters(cls)
    takes = frozenset(p.name for p in params)
    splits = "train" if "train" in takes else "split" if "split" in takes else "pool"
    managed = MANAGED | ({"split"} if splits == "split" else set())
    ctor = {p.name: p.default for p in params if p.name not in managed and p.default is not p.empty}
    required = tuple(p.name for p in params if p.name not in managed and p.default is p.empty)
    return VisionClass(name, cls, splits, ctor, required, takes)


def vision_options(name: str) -> dict[str, object]:
    """Option -> default of `torchvision:<name>`: seedvar's own plus the constructor's."""
    return vision_class(name).options


# ---------------------------------------------------------------------------------------------- decoding


# ------------------------------------------------------------------------------------------------ tasks


def _check_common(
    train_size: object, test_size: object, augment: object, resize: object, mode: object
) -> tuple[int | None, int | None, bool, tuple[int, int] | None, str | None]:
    sizes = [
        None if v is None else check_int(k, v, 1)
        for k, v in (("train_size", train_size), ("test_size", test_size))
    ]
    if resize is not None:
        if not (isinstance(resize, (list, tuple)) and len(resize) == 2):
            raise DataError(f"option resize must be [height, width], got {resize!r}")
        resize = (
            check_int("resize height", resize[0], 1, 4096),
            check_int("resize width", resize[1], 1, 4096),
        )
    if mode is not None and mode not in MODES:
        raise DataError(f"option mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return sizes[0], sizes[1], check_bool("augment", augment), resize, mode  # type: ignore[return-value]


def _split_pools(
    pools: Pools, split_seed: int, test_fraction: object, train_size: int | None, test_size: int | None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Train and test images from the decoded pools, drawn with the split seed; test ids index their pool."""
    if "x" in pools:  # one pool: a stratified split
        if not (
            isinstance(test_fraction, (int, float))
            and not isinstance(test_fraction, bool)
            and 0 < test_fraction < 1
        ):
            raise DataError(f"option test_fraction must be a number in (0, 1), got {test_fraction!r}")
        x, y = pools["x"], pools["y"]
        try:
            tr, te = train_test_split(
                np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=split_seed
            )
        except ValueError as e:
            raise DataError(
                f"cannot split {len(y)} images into train and test by class: {brief(e)}"
            ) from None
        tr, te = np.sort(tr), np.sort(te)
        tr_x, tr_y, te_x, te_y = x[tr], y[tr], x[te], y[te]
        ids = te
    else:
        tr_x, tr_y, te_x, te_y = pools["train_x"], pools["train_y"], pools["test_x"], pools["test_y"]
        ids = np.arange(len(te_y))
    for opt, size, n in (("train_size", train_size, len(tr_y)), ("test_size", test_size, len(te_y))):
        if size is not None and size > n:
            raise DataError(f"option {opt}={size} exceeds the {n} images available")
    a, _ = pick(tr_y, train_size, split_seed)
    b, _ = pick(te_y, test_size, split_seed)
    return (tr_x[a], tr_y[a]), (te_x[b], te_y[b]), ids[b]


def _task(
    name: str,
    pools: Pools,
    class_names: list[str],
    *,
    split_seed: int,
    device: torch.device,
    test_fraction: object,
    sizes: tuple[int | None, int | None],
    augment: bool,
    info: dict[str, int | float | str],
) -> Task:
    train, test, test_ids = _split_pools(pools, split_seed, test_fraction, *sizes)
    labels = np.concatenate([train[1], test[1]])
    if len(labels) and labels.max() >= len(class_names):
        raise DataError(f"{name} has class index {labels.max()} but {len(class_names)} class names")
    stats = channel_stats(train[0])
    info = {
        **info,
        "mean": ",".join(f"{v:.4f}" for v in stats[0]),
        "std": ",".join(f"{v:.4f}" for v in stats[1]),
    }
    return image_task(
        name,
        train,
        test,
        class_names,
        augment,
        device,
        info,
        test_ids,
        in_shape=tuple(int(d) for d in train[0].shape[1:]),  # type: ignore[arg-type]
        stats=stats,
    )


def _class_names(datasets: list[Any], labels: list[np.ndarray]) -> list[str]:
    """The dataset's own class names when it has them, else class_0 .. class_{C-1}."""
    top = max(int(y.max()) for y in labels if len(y)) + 1
    names = getattr(datasets[0], "classes", None)
    if isinstance(names, (list, tuple)) and len(names) >= top and all(isinstance(n, str) for n in names):
        return list(names)
    count = getattr(datasets[0], "num_classes", None)
    count = count if isinstance(count, int) and count >= top else top
    return [f"class_{i}" for i in range(count)]


def vision_task(
    name: str,
    *,
    split_seed: int,
    root: str | Path | None,
    download: bool,
    device: torch.device,
    train_size: int | None = None,
    test_size: int | None = None,
    augment: bool = True,
    resize: list[int] | None = None,
    mode: str | None = None,
    test_fraction: float = 0.2,
    train_split: str = "train",
    test_split: str = "test",
    **ctor: object,
) -> Task:
    """`torchvision:<name>`: construct the class (train and test, or one pool), decode once, split, load."""
    import torchvision

    vc = vision_class(name)
    sizes_aug = _check_common(train_size, test_size, augment, resize, mode)
    missing = [k for k in vc.required if ctor.get(k) is None]
    if missing:
        raise DataError(f"torchvision:{name} needs option(s) {', '.join(missing)} in [dataset]")
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in ctor.items()}
    folder = data_root(root) / name.lower()
    if "root" in vc.takes:
        args["root"] = str(folder)
    if "download" in vc.takes:
        args["download"] = bool(download)
    if vc.splits == "train":
        calls = {"train": {**args, "train": True}, "test": {**args, "train": False}}
    elif vc.splits == "split":
        calls = {"train": {**args, "split": train_split}, "test": {**args, "split": test_split}}
    else:
        calls = {"all": args}
    datasets = {}
    for pool, kwargs in calls.items():
        try:
            datasets[pool] = vc.cls(**kwargs)
        except Exception as e:  # missing files, bad option values, no network: one line each
            hint = (
                f": put its files under {folder} or run with --download"
                if "download" in vc.takes and not download
                else ""
            )
            shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in ("root", "download"))
            raise DataError(f"torchvision:{name}({shown}) failed ({brief(e)}){hint}") from None
    files = (
        sorted(p for p in folder.rglob("*") if p.is_file()) if "root" in vc.takes and folder.is_dir() else []
    )
    key = cache_key(
        {
            "dataset": f"torchvision:{name}",
            "calls": {
                p: {k: v for k, v in kw.items() if k not in ("root", "download")} for p, kw in calls.items()
            },
            "mode": sizes_aug[4],
            "resize": sizes_aug[3],
            "torchvision": torchvision.__version__,
            "files": fingerprint_files(files, folder),
        }
    )

    def build() -> Pools:
        out: Pools = {}
        for pool, ds in datasets.items():
            x, y = decode(ds, f"torchvision:{name} ({pool})", sizes_aug[4], sizes_aug[3])
            prefix = "" if pool == "all" else f"{pool}_"
            out[f"{prefix}x"], out[f"{prefix}y"] = x, y
        labels = [out[k] for k in out if k.endswith("y")]
        out["class_names"] = np.array(_class_names(list(datasets.values()), labels))
        return out

    pools, _ = cached(key, root, build)
    info = {"source": f"torchvision {torchvision.__version__} {name}", "fingerprint": key[:16]}
    return _task(
        f"torchvision:{name}",
        pools,
        [str(c) for c in pools["class_names"]],
        split_seed=split_seed,
        device=device,
        test_fraction=test_fraction,
        sizes=sizes_aug[:2],
        augment=sizes_aug[2],
        info=info,
    )


def _open(path: str) -> Image.Image:
    """ImageFolder's loader: the file as PIL decodes it (mode conversion happens in decode)."""
    with open(path, "rb") as f:
        image = Image.open(f)
        image.load()
    return image


def image_folder_task(
    *,
    split_seed: int,
    root: str | Path | None,
    download: bool,
    device: torch.device,
    path: str | None,
    test_path: str | None,
    train_size: int | None,
    test_size: int | None,
    augment: bool,
    resize: list[int] | None,
    mode: str | None,
    test_fraction: float,
) -> Task:
    """`image_folder`: class folders of images under `path` (and `test_path`, else split by test_fraction)."""
    import torchvision

    sizes_aug = _check_common(train_size, test_size, augment, resize, mode)
    if not isinstance(path, str) or not path:
        raise DataError('image_folder needs path = "folder/with/one/subfolder/per/class" in [dataset]')
    folders = {"all": path} if test_path is None else {"train": path, "test": test_path}
    datasets = {}
    for pool, folder in folders.items():
        if not isinstance(folder, str) or not Path(folder).expanduser().is_dir():
            raise DataError(
                f"image_folder: {folder!r} is not a folder (it should hold one subfolder per class)"
            )
        try:
            datasets[pool] = torchvision.datasets.ImageFolder(str(Path(folder).expanduser()), loader=_open)
        except Exception as e:  # no class folders, no images with a known extension
            raise DataError(f"image_folder {folder}: {brief(e)}") from None
    if test_path is not None and datasets["train"].classes != datasets["test"].classes:
        raise DataError(
            f"image_folder: the class folders of path ({', '.join(datasets['train'].classes)}) and test_path "
            f"({', '.join(datasets['test'].classes)}) differ"
        )
    first = next(iter(datasets.values()))
    samples = {pool: [Path(p) for p, _ in ds.samples] for pool, ds in datasets.items()}
    key = cache_key(
        {
            "dataset": "image_folder",
            "classes": first.classes,
            "mode": sizes_aug[4],
            "resize": sizes_aug[3],
            "files": {
                pool: [
                    (label, f)
                    for (_, label), f in zip(
                        ds.samples, fingerprint_files(samples[pool], Path(folders[pool])), strict=True
                    )
                ]
                for pool, ds in datasets.items()
            },
        }
    )

    def build() -> Pools:
        out: Pools = {}
        for pool, ds in datasets.items():
            x, y = decode(ds, f"image_folder {folders[pool]}", sizes_aug[4], sizes_aug[3])
            prefix = "" if pool == "all" else f"{pool}_"
            out[f"{prefix}x"], out[f"{prefix}y"] = x, y
        out["class_names"] = np.array(first.classes)
        return out

    pools, _ = cached(key, root, build)
    info = {"source": str(Path(path).expanduser().resolve()), "fingerprint": key[:16]}
    return _task(
        "image_folder",
        pools,
        [str(c) for c in pools["class_names"]],
        split_seed=split_seed,
        device=device,
        test_fraction=test_fraction,
        sizes=sizes_aug[:2],
        augment=sizes_aug[2],
        info=info,
    )
