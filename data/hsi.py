"""Hyperspectral tasks: a scene (data/scenes.py) reduced by PCA, split into train and test pixels
(data/splits.py), and windows around each labelled pixel cut per batch on the device."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA

from seedvar.data.core import BatchLoader, DataError, Task, brief, check_bool, check_int, combine
from seedvar.data.scenes import SCENES, Scene, files_scene, published_scene, synthetic_scene
from seedvar.data.splits import SPLITS, leakage, pixel_split, spatial_split

HSI_OPTIONS: dict[str, object] = {
    "pca": 30,
    "window": 25,
    "train_fraction": 0.3,
    "test_per_class": None,
    "pca_fit": "all",
    "whiten": True,
    "split": "random",
    "block": None,
}
HSI_MAT_OPTIONS: dict[str, object] = {
    "cube_path": None,
    "gt_path": None,
    "cube_key": None,
    "gt_key": None,
    **HSI_OPTIONS,
}
SYNTHETIC_HSI_OPTIONS: dict[str, object] = {
    **HSI_OPTIONS,
    "pca": 15,
    "window": 9,
    "height": 48,
    "width": 48,
    "bands": 40,
    "num_classes": 4,
    "data_seed": 0,
}


@functools.lru_cache(maxsize=4)
def _pca_all(scene: Scene, k: int, whiten: bool) -> tuple[np.ndarray, float]:
    """PCA fitted on every pixel (the HybridSN recipe): the same for every split, so cached per scene."""
    return _pca(scene.cube, None, k, whiten)


def _pca(cube: np.ndarray, fit_pixels: np.ndarray | None, k: int, whiten: bool) -> tuple[np.ndarray, float]:
    """Cube reduced to (H, W, k) float32, fitted on all pixels or the given flat pixel indices."""
    flat = cube.reshape(-1, cube.shape[2]).astype(np.float64)
    pca = PCA(n_components=k, whiten=whiten, random_state=0)
    try:
        pca.fit(flat if fit_pixels is None else flat[fit_pixels])
    except ValueError as e:  # e.g. more components than training pixels with pca_fit='train'
        raise DataError(
            f"cannot fit a {k}-component PCA ({brief(e)}): lower pca or use pca_fit='all'"
        ) from None
    reduced = pca.transform(flat).astype(np.float32).reshape(*cube.shape[:2], k)
    return reduced, float(pca.explained_variance_ratio_.sum())


class PatchLoader(BatchLoader):
    """Windows around labelled pixels, cut per batch from the zero-padded PCA cube on the device.

    All patches at once would be huge (30x25x25 floats x 10,249 pixels = 770 MB); one advanced-indexing
    gather on a strided window view copies only the batch, straight into (N, 1, bands, w, w) order.
    """

    def __init__(self, padded: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor, window: int) -> None:
        super().__init__(labels)
        self.padded = padded  # (H + w - 1, W + w - 1, k), channels last
        self.coords = coords  # (N, 2) row, col in the unpadded scene
        self.windows = padded.unfold(0, window, 1).unfold(1, window, 1)  # view (H, W, k, w, w)

    def _gather(self, idx: torch.Tensor, augment: torch.Generator | None) -> torch.Tensor:
        rc = self.coords[idx]
        return self.windows[rc[:, 0], rc[:, 1]].unsqueeze(1)


def _check_hsi_options(
    *,
    pca: object,
    window: object,
    train_fraction: object,
    test_per_class: object,
    pca_fit: object,
    whiten: object,
    split: object,
    block: object,
) -> None:
    """Reject bad options before any file is read (pca and window against the scene are checked after)."""
    check_int("pca", pca, 1)
    if check_int("window", window, 1) % 2 == 0:
        raise DataError(f"option window must be odd so the patch is centred on its pixel, got {window}")
    if (
        isinstance(train_fraction, bool)
        or not isinstance(train_fraction, (int, float))
        or not 0 < train_fraction < 1
    ):
        raise DataError(f"option train_fraction must be a number in (0, 1), got {train_fraction!r}")
    if test_per_class is not None:
        check_int("test_per_class", test_per_class, 1)
    if pca_fit not in ("all", "train"):
        raise DataError(
            f"option pca_fit must be 'all' (as in HybridSN) or 'train' (no test leakage), got {pca_fit!r}"
        )
    check_bool("whiten", whiten)
    if split not in SPLITS:
        raise DataError(
            f"option split must be 'random' (pixels drawn at random) or 'spatial' (whole blocks, no "
            f"training pixel in a test window), got {split!r}"
        )
    if block is not None:
        check_int("block", block, 1)
        if split != "spatial":
            raise DataError("option block sets the block side of split = 'spatial'; remove it or set split")


def check_scene_shape(
    shape: tuple[int, ...], *, pca: object, window: object, split: object, block: object, **_: object
) -> None:
    """The options that a scene of this (height, width, bands) shape refuses, known before any pixel is read."""
    height, width, bands = shape
    if pca > bands:  # type: ignore[operator]
        raise DataError(f"option pca={pca} exceeds the {bands} bands of the cube: use pca <= {bands}")
    if window > min(height, width):  # type: ignore[operator]
        raise DataError(
            f"option window={window} is larger than the {height}x{width} scene: use an odd window of at "
            f"most {min(height, width) - 1 + min(height, width) % 2}"
        )
    if split == "spatial" and block is not None and block >= max(height, width):  # type: ignore[operator]
        raise DataError(
            f"option block={block} makes the {height}x{width} scene a single block, which would put every labelled "
            f"pixel on one side of a spatial split: use a block below {max(height, width)}"
        )


def check_options(name: str, options: dict[str, object]) -> None:
    """Every option of a hyperspectral dataset that can be judged without reading its files (all options
    given, defaults filled in): what a dry run refuses, as a real sweep would."""
    hsi = {k: options[k] for k in HSI_OPTIONS}
    _check_hsi_options(**hsi)
    if name in SCENES:
        check_scene_shape(SCENES[name].shape, **hsi)
    elif name == "synthetic_hsi":
        sizes = [check_int(k, options[k], lo, 4096) for k, lo in (("height", 8), ("width", 8), ("bands", 2))]
        check_scene_shape(tuple(sizes), **hsi)


def _hsi_task(
    name: str,
    scene: Scene,
    classes: dict[int, str],
    split_seed: int,
    device: torch.device,
    info: dict[str, int | float | str],
    *,
    pca: int,
    window: int,
    train_fraction: float,
    test_per_class: int | None,
    pca_fit: str,
    whiten: bool,
    split: str,
    block: int | None,
) -> Task:
    """The pipeline shared by every scene: label mapping, split, PCA, padding, loaders."""
    height, width, bands = scene.cube.shape
    check_scene_shape(scene.cube.shape, pca=pca, window=window, split=split, block=block)
    ids = np.unique(scene.gt)
    ids = ids[ids != 0].astype(np.int64)
    if len(ids) < 2:
        raise DataError(
            f"{scene.source}: the ground truth has {len(ids)} labelled class(es); need at least 2"
        )
    names = [classes.get(int(i), f"class_{i}") for i in ids]
    gt = np.where(scene.gt == 0, -1, np.searchsorted(ids, scene.gt)).astype(np.int64)
    rows, cols = np.nonzero(gt >= 0)  # row-major, as in the HybridSN code
    y = gt[rows, cols]
    split_info: dict[str, int | float | str] = {"split": split}
    if split == "random":
        train, test = pixel_split(y, train_fraction, test_per_class, split_seed, names)
    else:
        cut = spatial_split(
            rows,
            cols,
            y,
            (height, width),
            window=window,
            block=block,
            train_fraction=train_fraction,
            test_per_class=test_per_class,
            seed=split_seed,
            names=names,
        )
        train, test = cut.train, cut.test
        split_info.update(
            block=cut.block, gap_pixels=cut.gap, one_sided_classes=", ".join(cut.one_sided) or "none"
        )
    split_info["leakage"] = leakage(
        np.stack([rows[train], cols[train]], 1),
        np.stack([rows[test], cols[test]], 1),
        (height, width),
        window,
    )

    if pca_fit == "all":
        reduced, explained = _pca_all(scene, pca, bool(whiten))
    else:
        reduced, explained = _pca(scene.cube, rows[train] * width + cols[train], pca, bool(whiten))
    r = window // 2
    padded = F.pad(torch.from_numpy(reduced).to(device), (0, 0, r, r, r, r))
    coords = torch.from_numpy(np.stack([rows, cols], 1)).to(device)
    labels = torch.from_numpy(y).to(device)

    def loader(idx: np.ndarray) -> PatchLoader:
        t = torch.from_numpy(idx).to(device)
        return PatchLoader(padded, coords[t], labels[t], window)

    train_ids, test_ids = rows[train] * width + cols[train], rows[test] * width + cols[test]
    preparation = json.dumps({"pca": pca, "pca_fit": pca_fit, "whiten": bool(whiten), "window": window})

    return Task(
        name=name,
        kind="hyperspectral",
        in_shape=(1, pca, window, window),
        num_classes=len(ids),
        class_names=names,
        label_ids=ids.tolist(),
        train=loader(train),
        test=loader(test),
        test_coords=np.stack([rows[test], cols[test]], 1),
        gt=gt,
        test_ids=test_ids,
        train_ids=train_ids,
        info={
            "n_train": len(train),
            "n_test": len(test),
            "height": height,
            "width": width,
            "bands": bands,
            "pca": pca,
            "pca_explained_variance": explained,
            "pca_fit": pca_fit,
            "whiten": int(bool(whiten)),
            "window": window,
            "train_fraction": float(train_fraction),
            "source": scene.source,
            **split_info,
            "content_sha256": scene.sha256,
            "fingerprint": combine(scene.sha256, preparation, train_ids, test_ids),
            **info,
        },
    )


def scene_task(
    name: str,
    *,
    split_seed: int,
    root: str | Path | None,
    download: bool,
    device: torch.device,
    **hsi: object,
) -> Task:
    """A published scene by name (see SCENES); hsi holds the HSI_OPTIONS."""
    _check_hsi_options(**hsi)
    scene, verified = published_scene(name, root, download)
    return _hsi_task(name, scene, SCENES[name].classes, split_seed, device, {"verified": verified}, **hsi)


def hsi_mat_task(
    *,
    split_seed: int,
    root: str | Path | None,
    download: bool,
    device: torch.device,
    cube_path: str | Path | None,
    gt_path: str | Path | None,
    cube_key: str | None,
    gt_key: str | None,
    **hsi: object,
) -> Task:
    """Any scene given as a cube .mat and a ground-truth .mat (they may be the same file)."""
    if cube_path is None or gt_path is None:
        raise DataError(
            "dataset hsi_mat needs the options cube_path and gt_path (.mat files of cube and ground truth)"
        )
    _check_hsi_options(**hsi)
    cube, gt = Path(cube_path).expanduser(), Path(gt_path).expanduser()
    for path in (cube, gt):
        if not path.is_file():
            raise DataError(f"hsi_mat: no file at {path}: check cube_path / gt_path")
    scene = files_scene(cube, cube_key, gt, gt_key)
    info = {"verified": "shape-only", "gt_source": str(gt)}
    return _hsi_task("hsi_mat", scene, {}, split_seed, device, info, **hsi)


def synthetic_hsi_task(
    *,
    split_seed: int,
    root: str | Path | None,
    download: bool,
    device: torch.device,
    height: int,
    width: int,
    bands: int,
    num_classes: int,
    data_seed: int,
    **hsi: object,
) -> Task:
    """A small fixed scene (from data_seed) through exactly the real pipeline: fast tests and demos."""
    _check_hsi_options(**hsi)
    size = [check_int(k, v, 8, 4096) for k, v in (("height", height), ("width", width))]
    bands = check_int("bands", bands, 2, 4096)
    num_classes = check_int("num_classes", num_classes, 2, 255)
    scene = synthetic_scene(*size, bands, num_classes, check_int("data_seed", data_seed, 0))
    info = {"verified": "shape-only", "data_seed": data_seed}
    return _hsi_task("synthetic_hsi", scene, {}, split_seed, device, info, **hsi)
