"""Hyperspectral scenes: .mat loading, PCA, stratified pixel split, and windows cut per batch on the device."""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from torchvision.datasets.utils import download_url

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

GIC = "http://www.ehu.eus/ccwintco/uploads"  # the UPV/EHU GIC group's published copies

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
SPLITS = ("random", "spatial")
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

_INDIAN_PINES = [
    "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees", "Grass-pasture-mowed",
    "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill", "Soybean-clean", "Wheat", "Woods",
    "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
]  # fmt: skip
_SALINAS = [
    "Brocoli_green_weeds_1", "Brocoli_green_weeds_2", "Fallow", "Fallow_rough_plow", "Fallow_smooth", "Stubble",
    "Celery", "Grapes_untrained", "Soil_vinyard_develop", "Corn_senesced_green_weeds", "Lettuce_romaine_4wk",
    "Lettuce_romaine_5wk", "Lettuce_romaine_6wk", "Lettuce_romaine_7wk", "Vinyard_untrained",
    "Vinyard_vertical_trellis",
]  # fmt: skip
_PAVIA_U = [
    "Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
    "Self-Blocking Bricks", "Shadows",
]  # fmt: skip
_PAVIA_C = [
    "Water",
    "Trees",
    "Asphalt",
    "Self-Blocking Bricks",
    "Bitumen",
    "Tiles",
    "Shadows",
    "Meadows",
    "Bare Soil",
]
_KSC = [
    "Scrub", "Willow swamp", "Cabbage palm hammock", "Cabbage palm/oak hammock", "Slash pine",
    "Oak/broadleaf hammock", "Hardwood swamp", "Graminoid marsh", "Spartina marsh", "Cattail marsh",
    "Salt marsh", "Mud flats", "Water",
]  # fmt: skip
_BOTSWANA = [
    "Water", "Hippo grass", "Floodplain grasses 1", "Floodplain grasses 2", "Reeds", "Riparian", "Firescar",
    "Island interior", "Acacia woodlands", "Acacia shrublands", "Acacia grasslands", "Short mopane",
    "Mixed mopane", "Exposed soils",
]  # fmt: skip


def _ids(names: list[str]) -> dict[int, str]:
    return dict(enumerate(names, start=1))


@dataclass(frozen=True)
class SceneSpec:
    """A published scene: files under <root>/<name>/, their variables, URLs, shape and class names by id."""

    cube_file: str
    cube_key: str
    cube_url: str
    gt_file: str
    gt_key: str
    gt_url: str
    shape: tuple[int, int, int]
    classes: dict[int, str]


SCENES: dict[str, SceneSpec] = {
    "indian_pines": SceneSpec(
        "Indian_pines_corrected.mat", "indian_pines_corrected", f"{GIC}/6/67/Indian_pines_corrected.mat",
        "Indian_pines_gt.mat", "indian_pines_gt", f"{GIC}/c/c4/Indian_pines_gt.mat",
        (145, 145, 200), _ids(_INDIAN_PINES),
    ),
    "salinas": SceneSpec(
        "Salinas_corrected.mat", "salinas_corrected", f"{GIC}/a/a3/Salinas_corrected.mat",
        "Salinas_gt.mat", "salinas_gt", f"{GIC}/f/fa/Salinas_gt.mat",
        (512, 217, 204), _ids(_SALINAS),
    ),
    "salinas_a": SceneSpec(  # a Salinas subscene that keeps Salinas' label ids 1, 10..14
        "SalinasA_corrected.mat", "salinasA_corrected", f"{GIC}/1/1a/SalinasA_corrected.mat",
        "SalinasA_gt.mat", "salinasA_gt", f"{GIC}/a/aa/SalinasA_gt.mat",
        (83, 86, 204), _ids(_SALINAS),
    ),
    "pavia_u": SceneSpec(
        "PaviaU.mat", "paviaU", f"{GIC}/e/ee/PaviaU.mat",
        "PaviaU_gt.mat", "paviaU_gt", f"{GIC}/5/50/PaviaU_gt.mat",
        (610, 340, 103), _ids(_PAVIA_U),
    ),
    "pavia_c": SceneSpec(
        "Pavia.mat", "pavia", f"{GIC}/e/e3/Pavia.mat",
        "Pavia_gt.mat", "pavia_gt", f"{GIC}/5/53/Pavia_gt.mat",
        (1096, 715, 102), _ids(_PAVIA_C),
    ),
    "ksc": SceneSpec(
        "KSC.mat", "KSC", f"{GIC}/2/26/KSC.mat",
        "KSC_gt.mat", "KSC_gt", f"{GIC}/a/a6/KSC_gt.mat",
        (512, 614, 176), _ids(_KSC),
    ),
    "botswana": SceneSpec(
        "Botswana.mat", "Botswana", f"{GIC}/7/72/Botswana.mat",
        "Botswana_gt.mat", "Botswana_gt", f"{GIC}/5/58/Botswana_gt.mat",
        (1476, 256, 145), _ids(_BOTSWANA),
    ),
}  # fmt: skip


@dataclass(eq=False)  # hashed by identity: the PCA of a cached scene is cached alongside it
class Scene:
    """A validated cube (H, W, bands) and ground truth (H, W) of non-negative ids, 0 = unlabelled."""

    cube: np.ndarray
    gt: np.ndarray
    source: str

    def __post_init__(self) -> None:
        cube, gt = self.cube, self.gt
        if cube.ndim != 3 or cube.dtype.kind not in "iuf":
            raise DataError(
                f"{self.source}: the cube must be a real 3-D array (H, W, bands), got {cube.dtype} {cube.shape}"
            )
        if gt.ndim != 2 or gt.shape != cube.shape[:2]:
            raise DataError(
                f"{self.source}: ground truth {gt.shape} does not match the cube's {cube.shape[:2]} pixels"
            )
        if not _integral(gt) or gt.min() < 0:
            raise DataError(
                f"{self.source}: ground truth must hold non-negative integer class ids (0 = unlabelled)"
            )

    @functools.cached_property
    def part_sha256(self) -> dict[str, str]:
        """Content fingerprints of cube and ground truth, computed once per (cached) scene."""
        return {"cube": fingerprint(self.cube), "gt": fingerprint(self.gt)}

    @property
    def sha256(self) -> str:
        """One fingerprint of the scene's content, whatever file it came from."""
        return combine(self.part_sha256["cube"], self.part_sha256["gt"])


def _integral(a: np.ndarray) -> bool:
    return a.dtype.kind in "iu" or (a.dtype.kind == "f" and bool(np.all(np.isfinite(a) & (a == np.round(a)))))


def read_mat(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a MATLAB (v5/v7) file; damaged or HDF5-based files become one-line DataErrors."""
    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError:  # scipy's answer to v7.3 files
        raise DataError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which needs h5py (not installed): re-save it with save(..., '-v7')"
        ) from None
    except Exception as e:  # scipy raises many types for truncated or foreign files
        raise DataError(
            f"cannot read {path} ({brief(e)}): the file is truncated or not a MATLAB file; replace it"
        ) from None
    return {k: v for k, v in contents.items() if not k.startswith("__") and isinstance(v, np.ndarray)}


def _variable(arrays: dict[str, np.ndarray], path: Path, key: str | None, ndim: int) -> np.ndarray:
    """The named variable, or the only plausible one: a 3-D cube or a 2-D integer ground truth."""
    found = ", ".join(f"{k} {a.dtype}{list(a.shape)}" for k, a in arrays.items()) or "none"
    what, opt = ("cube", "cube_key") if ndim == 3 else ("ground truth", "gt_key")
    if key is not None:
        if key not in arrays:
            raise DataError(
                f"variable {key!r} is not in {path} (variables found: {found}); set {opt} to the {what}"
            )
        return arrays[key]
    candidates = [k for k, a in arrays.items() if a.ndim == ndim and (ndim == 3 or _integral(a))]
    if len(candidates) != 1:
        raise DataError(
            f"cannot tell which variable of {path} is the {what} (variables found: {found}); set {opt}"
        )
    return arrays[candidates[0]]


@functools.lru_cache(maxsize=2)
def _scene_from_files(
    cube: str, cube_key: str | None, gt: str, gt_key: str | None, stamp: tuple[int, ...]
) -> Scene:
    """Read once per sweep: keyed on paths, variable names and file mtimes/sizes."""
    cube_arrays = read_mat(Path(cube))
    gt_arrays = cube_arrays if gt == cube else read_mat(Path(gt))
    return Scene(
        _variable(cube_arrays, Path(cube), cube_key, 3), _variable(gt_arrays, Path(gt), gt_key, 2), cube
    )


def _files_scene(cube: Path, cube_key: str | None, gt: Path, gt_key: str | None) -> Scene:
    stamp = tuple(v for p in (cube, gt) for v in (p.stat().st_mtime_ns, p.stat().st_size))
    return _scene_from_files(str(cube), cube_key, str(gt), gt_key, stamp)


@functools.lru_cache(maxsize=1)
def _tensorly_scene() -> Scene | None:
    """Indian Pines as shipped inside the tensorly wheel: an offline source that needs no download."""
    spec = importlib.util.find_spec("tensorly")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    cube, gt = folder / "Indian_pines_corrected.npy", folder / "Indian_pines_gt.npy"
    if not (cube.exists() and gt.exists()):
        return None
    return Scene(np.load(cube), np.load(gt), "tensorly")


def _download(url: str, path: Path) -> None:
    try:
        download_url(url, str(path.parent), filename=path.name)
    except Exception as e:  # network and disk errors alike: leave no partial file behind
        path.unlink(missing_ok=True)
        raise DataError(
            f"downloading {url} failed ({brief(e)}): check the network, or place the file at {path}"
        ) from None


def _published_scene(name: str, root: str | Path | None, download: bool) -> tuple[Scene, str]:
    """The scene from <root>/<name>/, else downloaded, else (Indian Pines) tensorly; checked against its spec."""
    spec = SCENES[name]
    folder = data_root(root) / name
    cube, gt = folder / spec.cube_file, folder / spec.gt_file
    downloaded = []
    if download:
        for url, path in ((spec.cube_url, cube), (spec.gt_url, gt)):
            if not path.exists():
                _download(url, path)
                downloaded.append(path)
    try:
        return _verified_scene(name, spec, cube, gt)
    except DataError as e:
        if not downloaded:
            raise
        for path in downloaded:  # a bad download is not kept: the next try fetches it again
            path.unlink(missing_ok=True)
        raise DataError(f"{e} (downloaded from {spec.cube_url} and {spec.gt_url}; deleted)") from None


def _verified_scene(name: str, spec: SceneSpec, cube: Path, gt: Path) -> tuple[Scene, str]:
    """The scene from its two files (or tensorly's copy), checked against the published shape and sha256."""
    if cube.exists() and gt.exists():
        scene = _files_scene(cube, spec.cube_key, gt, spec.gt_key)
    elif name == "indian_pines" and (tensorly := _tensorly_scene()) is not None:
        scene = tensorly
    else:
        raise DataError(
            f"{name} not found: expected {cube} and {gt}; get them from {spec.cube_url} and {spec.gt_url} "
            f"(download=True) or point --data-root at a folder holding {name}/"
        )
    if scene.cube.shape != spec.shape:
        raise DataError(
            f"{scene.source} holds a {scene.cube.shape} cube, but {name} is {spec.shape}: not the expected scene"
        )
    if f"{name}/cube" not in KNOWN_FINGERPRINTS:
        return scene, "shape-only"
    for part, sha in scene.part_sha256.items():
        if sha != KNOWN_FINGERPRINTS[f"{name}/{part}"]:
            raise DataError(
                f"the {part} in {scene.source} differs from the published {name} {part}: not the expected scene"
            )
    return scene, "sha256"


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


def _split(
    y: np.ndarray, train_fraction: float, test_per_class: int | None, seed: int, names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified pixel split (same partition as the HybridSN code for the same seed), then every class
    keeps at least one training and one test pixel; test_per_class caps each class's test pixels."""
    counts = np.bincount(y, minlength=len(names))
    if (small := np.flatnonzero(counts < 2)).size:
        c = small[0]
        raise DataError(
            f"class {names[c]!r} has {counts[c]} labelled pixel(s); every class needs 2 (one to train, one to test)"
        )
    try:
        train, rest = train_test_split(
            np.arange(len(y)), train_size=train_fraction, stratify=y, random_state=seed
        )
    except ValueError as e:
        raise DataError(
            f"cannot split {len(y)} pixels with train_fraction={train_fraction} ({brief(e)}): raise train_fraction"
        ) from None
    in_train = np.zeros(len(y), bool)
    in_train[train] = True
    for c in range(len(names)):  # rare classes at tiny fractions: move one pixel across
        if not in_train[y == c].any():
            in_train[rest[y[rest] == c][0]] = True
        elif in_train[y == c].all():
            in_train[train[y[train] == c][0]] = False
    train, test = np.flatnonzero(in_train), np.flatnonzero(~in_train)
    if test_per_class is not None:
        rng = np.random.default_rng(seed)
        test = np.sort(
            np.concatenate([rng.permutation(test[y[test] == c])[:test_per_class] for c in range(len(names))])
        )
    return train, test


def leakage(train_rc: np.ndarray, test_rc: np.ndarray, shape: tuple[int, int], window: int) -> float:
    """Share of test pixels whose window holds at least one training pixel (rows of (row, col) pairs).

    Such a test pixel is classified from a patch the model was trained on: its accuracy is inflated.
    A window around q holds p exactly when p's window holds q (Chebyshev distance <= window // 2).
    """
    if len(test_rc) == 0:
        return float("nan")
    near = _near(train_rc, shape, window)
    return float(near[test_rc[:, 0], test_rc[:, 1]].mean())


def _near(rc: np.ndarray, shape: tuple[int, int], window: int) -> np.ndarray:
    """(H, W) bool: pixels whose window holds at least one of the given pixels."""
    mask = np.zeros(shape, np.uint8)
    mask[rc[:, 0], rc[:, 1]] = 1
    return ndimage.maximum_filter(mask, size=window, mode="constant", cval=0).astype(bool)


def auto_block(shape: tuple[int, int], window: int) -> int:
    """Default block side of a spatial split: about 10 blocks across the scene's shorter side, never below
    one window. Smaller blocks balance classes better but lose more test pixels to the gap (window // 2
    around every training block); on Indian Pines with 11x11 windows this keeps 15% training pixels
    within a few points of the target."""
    return max(window, min(shape) // 10)


@dataclass
class SpatialSplit:
    """Training and test pixels of a spatial split, with what it had to give up."""

    train: np.ndarray
    test: np.ndarray
    block: int
    gap: int  # labelled test-block pixels left out because a training pixel is inside their window
    one_sided: list[str]  # classes with no training or no test pixels


def _spatial_split(
    rows: np.ndarray,
    cols: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, int],
    *,
    window: int,
    block: int | None,
    train_fraction: float,
    test_per_class: int | None,
    seed: int,
    names: list[str],
) -> SpatialSplit:
    """Whole square blocks to train or test, then a gap: no test window holds a training pixel.

    Blocks are visited in a seeded random order and one joins the training side when that brings every
    class's training share closer to train_fraction (squared relative error summed over classes), so the
    split is class-balanced as far as blocks allow and differs with the seed. A class found in several
    blocks but on one side only then gets one block moved across. Test pixels within window // 2 of a
    training pixel form the gap and are used for nothing; classes left without training or test pixels
    are named, never dropped.
    """
    b = block if block is not None else auto_block(shape, window)
    c = len(names)
    per_row = -(-shape[1] // b)
    block_of = (rows // b) * per_row + cols // b
    counts = np.zeros((-(-shape[0] // b) * per_row, c))
    np.add.at(counts, (block_of, y), 1)
    occupied = np.flatnonzero(counts.sum(1) > 0)
    total = counts.sum(0)
    target = train_fraction * total
    rng = np.random.default_rng(seed)

    def error(have: np.ndarray) -> float:
        return float(((target - have) ** 2 / target).sum())

    chosen = np.zeros(len(counts), bool)
    have = np.zeros(c)
    improved = True
    while improved:
        improved = False
        for blk in rng.permutation(occupied):
            if not chosen[blk] and error(have + counts[blk]) < error(have):
                chosen[blk], have, improved = True, have + counts[blk], True
    for k in range(c):  # a class in several blocks lands on both sides
        holders = occupied[counts[occupied, k] > 0]
        if len(holders) < 2:
            continue
        if not chosen[holders].any():
            chosen[rng.choice(holders)] = True
        elif chosen[holders].all():
            chosen[holders[np.argmin(counts[holders, k])]] = False
    in_train = chosen[block_of]
    train, candidates = np.flatnonzero(in_train), np.flatnonzero(~in_train)
    if len(train) == 0 or len(candidates) == 0:
        raise DataError(
            f"a spatial split with {b}x{b} blocks put every labelled pixel on one side: use a smaller block"
        )
    near = _near(np.stack([rows[train], cols[train]], 1), shape, window)
    test = candidates[~near[rows[candidates], cols[candidates]]]
    if len(test) == 0:
        raise DataError(
            f"a spatial split with {b}x{b} blocks and window {window} leaves no test pixel outside the gap "
            "around the training blocks: use a larger block or a smaller window"
        )
    gap = len(candidates) - len(test)
    if test_per_class is not None:
        test = np.sort(
            np.concatenate([rng.permutation(test[y[test] == k])[:test_per_class] for k in range(c)])
        )
    sides = np.bincount(y[train], minlength=c) * np.bincount(y[test], minlength=c)
    return SpatialSplit(train, test, b, gap, [names[k] for k in np.flatnonzero(sides == 0)])


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
        train, test = _split(y, train_fraction, test_per_class, split_seed, names)
    else:
        cut = _spatial_split(
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
    scene, verified = _published_scene(name, root, download)
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
    scene = _files_scene(cube, cube_key, gt, gt_key)
    info = {"verified": "shape-only", "gt_source": str(gt)}
    return _hsi_task("hsi_mat", scene, {}, split_seed, device, info, **hsi)


@functools.lru_cache(maxsize=2)
def synthetic_scene(height: int, width: int, bands: int, num_classes: int, seed: int) -> Scene:
    """Classes as spatial blobs (nearest of 3 random centres per class) with smooth class spectra,
    a slow brightness gradient and pixel noise; pixels far from every centre stay unlabelled."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (3 * num_classes, 2)) * (height, width)
    owner = np.arange(len(centres)) % num_classes
    yy, xx = np.mgrid[0:height, 0:width]
    dist2 = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
    radius2 = 0.5 * height * width / len(centres)
    gt = np.where(dist2.min(-1) <= radius2, owner[dist2.argmin(-1)] + 1, 0)
    spectra = np.cumsum(rng.normal(0, 1, (num_classes + 1, bands)), axis=1)  # last row: background
    spectra = 1000 + 150 * (spectra - spectra.mean(1, keepdims=True)) / (spectra.std(1, keepdims=True) + 1e-9)
    brightness = 1 + 0.2 * (yy / height - 0.5)[..., None]
    cube = spectra[np.where(gt > 0, gt - 1, num_classes)] * brightness + rng.normal(
        0, 120, (height, width, bands)
    )
    return Scene(cube.astype(np.float32), gt.astype(np.uint8), "synthetic")


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
