"""Hyperspectral scenes as files: the published ones (Indian Pines, Salinas, Pavia, KSC, Botswana) by name,
verified by content, downloaded only when asked; any cube + ground truth as two .mat files; Indian Pines
from the tensorly wheel offline; and a synthetic scene for tests and demos."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from seedvar.data.core import KNOWN_FINGERPRINTS, DataError, brief, combine, data_root, fingerprint

GIC = "http://www.ehu.eus/ccwintco/uploads"  # the UPV/EHU GIC group's published copies


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


def files_scene(cube: Path, cube_key: str | None, gt: Path, gt_key: str | None) -> Scene:
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
    from torchvision.datasets.utils import download_url  # torchvision only where used (data/vision.py)

    try:
        download_url(url, str(path.parent), filename=path.name)
    except Exception as e:  # network and disk errors alike: leave no partial file behind
        path.unlink(missing_ok=True)
        raise DataError(
            f"downloading {url} failed ({brief(e)}): check the network, or place the file at {path}"
        ) from None


def published_scene(name: str, root: str | Path | None, download: bool) -> tuple[Scene, str]:
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
        scene = files_scene(cube, spec.cube_key, gt, spec.gt_key)
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
