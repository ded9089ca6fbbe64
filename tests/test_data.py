"""Datasets and loaders: real files (shared folder), the HSI pipeline, CIFAR augmentation, errors, learnability."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from sklearn.decomposition import PCA
from torch import nn

import seedvar.data as data
import seedvar.data.images as images
import seedvar.data.scenes as scenes
from seedvar.data import KNOWN_FINGERPRINTS, DataError, fingerprint, load_task
from seedvar.data.images import CIFAR_URL, MEAN, STD, read_batch

IP_COUNTS = [46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93]


def gens(seed: int) -> dict[str, torch.Generator]:
    return {"order": torch.Generator().manual_seed(seed), "augment": torch.Generator().manual_seed(seed + 1)}


def all_batches(loader: data.BatchLoader, batch_size: int = 128, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader.batches(batch_size, **kw), strict=True)
    return torch.cat(xs), torch.cat(ys)


def write_batch(path, images: np.ndarray, labels, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
    with open(path, "wb") as f:
        pickle.dump(
            {"data": images, "labels": list(labels), "batch_label": "synthetic"}, f, protocol=protocol
        )


def one_line_error(pattern: str, name: str, **kw) -> None:
    """load_task fails with a DataError whose single-line message matches pattern."""
    with pytest.raises(DataError, match=pattern) as err:
        load_task(name, **kw)
    assert "\n" not in str(err.value)


def unnormalize(x: torch.Tensor) -> torch.Tensor:
    """Back to uint8 pixel values, to compare augmented batches with the stored images exactly."""
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return ((x * std + mean) * 255).round().to(torch.uint8)


# ---------------------------------------------------------------- Indian Pines (tensorly's copy) and real files


@pytest.fixture(scope="module")
def ip(tmp_path_factory) -> data.Task:
    """Indian Pines from the copy inside the tensorly wheel: no files, no shared folder needed."""
    return load_task("indian_pines", split_seed=0, root=tmp_path_factory.mktemp("no_files"))


def test_indian_pines_from_tensorly_is_the_published_scene(ip):
    assert ip.info["source"] == "tensorly" and ip.info["verified"] == "sha256"  # the published arrays
    assert ip.kind == "hyperspectral" and ip.in_shape == (1, 30, 25, 25)
    assert ip.num_classes == 16 and ip.label_ids == list(range(1, 17))
    assert ip.class_names[0] == "Alfalfa" and ip.class_names[-1] == "Stone-Steel-Towers"
    assert ip.gt.shape == (145, 145) and (ip.gt >= 0).sum() == 10_249
    assert np.bincount(ip.gt[ip.gt >= 0]).tolist() == IP_COUNTS
    assert ip.info["n_train"] + ip.info["n_test"] == 10_249
    assert len(ip.train) == ip.info["n_train"] and len(ip.test) == len(ip.test_coords)


def test_indian_pines_files_are_the_same_scene(shared_datasets, ip):
    """The published .mat files (the shared folder) hold the same arrays as tensorly's copy: the same
    content fingerprints, pixel split and patches, whatever the source."""
    folder = shared_datasets / "indian_pines"
    cube = scipy.io.loadmat(folder / "Indian_pines_corrected.mat")["indian_pines_corrected"]
    gt = scipy.io.loadmat(folder / "Indian_pines_gt.mat")["indian_pines_gt"]
    assert (cube.shape, cube.dtype, gt.shape, gt.dtype) == ((145, 145, 200), np.uint16, (145, 145), np.uint8)
    assert fingerprint(cube) == KNOWN_FINGERPRINTS["indian_pines/cube"]
    assert fingerprint(gt) == KNOWN_FINGERPRINTS["indian_pines/gt"]
    files = load_task("indian_pines", split_seed=0, root=shared_datasets)
    assert files.info["source"] == str(folder / "Indian_pines_corrected.mat")
    assert files.info["verified"] == "sha256"
    assert np.array_equal(files.gt, np.where(gt == 0, -1, gt.astype(np.int64) - 1))
    assert np.array_equal(files.gt, ip.gt) and np.array_equal(files.test_coords, ip.test_coords)
    assert torch.equal(files.train.padded, ip.train.padded)
    assert files.info["content_sha256"] == ip.info["content_sha256"] and files.fingerprint == ip.fingerprint


def test_patches_are_windows_of_the_pca_cube_with_zero_padding(ip):
    cube = scenes._tensorly_scene().cube
    reduced = (
        PCA(30, whiten=True).fit_transform(cube.reshape(-1, 200).astype(np.float64)).reshape(145, 145, 30)
    )
    padded = np.pad(reduced, ((12, 12), (12, 12), (0, 0)))
    x, y = next(ip.test.batches(64))
    assert x.shape == (64, 1, 30, 25, 25) and x.dtype == torch.float32 and y.dtype == torch.int64
    for i, (r, c) in enumerate(ip.test_coords[:64]):
        assert y[i] == ip.gt[r, c]
        np.testing.assert_allclose(x[i, 0, :, 12, 12].numpy(), reduced[r, c], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(
            x[i, 0].numpy(), padded[r : r + 25, c : c + 25].transpose(2, 0, 1), atol=1e-4
        )
    top = np.flatnonzero(ip.test_coords[:64, 0] < 12)
    assert top.size, "the first test batch should reach the top border of Indian Pines"
    for i in top:  # rows above the scene are zero padding
        assert torch.all(x[i, 0, :, : 12 - ip.test_coords[i, 0]] == 0)


def test_every_class_keeps_train_and_test_pixels_at_tiny_fraction(tmp_path):
    task = load_task("indian_pines", split_seed=3, root=tmp_path, train_fraction=0.01)
    assert torch.bincount(task.train.labels, minlength=16).min() >= 1
    assert torch.bincount(task.test.labels, minlength=16).min() >= 1


def test_indian_pines_leakage_random_vs_spatial(tmp_path):
    """The leakage study's claim: with random pixels nearly every 11x11 test window holds a training pixel;
    a spatial split holds none, names the classes it cannot put on both sides, and keeps the rest."""
    kw = {"root": tmp_path, "pca": 15, "window": 11, "train_fraction": 0.15}
    rand = load_task("indian_pines", split_seed=0, **kw)
    assert rand.info["split"] == "random" and rand.info["leakage"] > 0.99
    spatial = load_task("indian_pines", split_seed=0, split="spatial", **kw)
    info = spatial.info
    assert info["leakage"] == 0.0 and info["block"] == 14 and info["gap_pixels"] > 0
    assert info["n_train"] + info["n_test"] + info["gap_pixels"] == 10_249
    assert 0.1 < info["n_train"] / 10_249 < 0.25  # near the 15% asked for
    one_sided = info["one_sided_classes"].split(", ")
    assert "Grass-pasture-mowed" in one_sided and spatial.num_classes == 16
    train = torch.bincount(spatial.train.labels, minlength=16).numpy()
    test = torch.bincount(spatial.test.labels, minlength=16).numpy()
    named = [spatial.class_names[k] for k in np.flatnonzero(train * test == 0)]
    assert named == one_sided


def test_cifar_test_batch_loads_with_its_fingerprint(shared_datasets):
    folder = shared_datasets / "cifar10" / "cifar-10-batches-py"
    images, labels = read_batch(folder / "test_batch")
    assert images.shape == (10_000, 3072) and np.bincount(labels).tolist() == [1000] * 10
    assert fingerprint(images) == KNOWN_FINGERPRINTS["cifar10/test/data"]
    assert fingerprint(labels) == KNOWN_FINGERPRINTS["cifar10/test/labels"]
    task = load_task(
        "cifar10", split_seed=0, root=shared_datasets, pool="test_batch", train_size=9000, test_size=1000
    )
    assert (len(task.train), len(task.test), task.info["verified"]) == (9000, 1000, "sha256")
    other = load_task(
        "cifar10", split_seed=1, root=shared_datasets, pool="test_batch", train_size=9000, test_size=1000
    )
    assert (
        other.info["content_sha256"] == task.info["content_sha256"] and other.fingerprint != task.fingerprint
    )
    assert task.class_names[0] == "airplane" and task.in_shape == (3, 32, 32)
    assert torch.bincount(task.train.labels).tolist() == [900] * 10
    assert torch.bincount(task.test.labels).tolist() == [100] * 10
    both = torch.cat([task.train.images, task.test.images]).view(10_000, -1).numpy()
    assert len(np.unique(both, axis=0)) == 10_000  # disjoint: every image used once


def test_cifar_standard_pool_without_training_batches_says_what_to_do(shared_datasets):
    with pytest.raises(DataError) as err:
        load_task("cifar10", split_seed=0, root=shared_datasets)
    msg = str(err.value)
    assert "data_batch" in msg and str(shared_datasets) in msg and CIFAR_URL in msg
    assert "--data-root" in msg and "test_batch" in msg and "\n" not in msg


# ---------------------------------------------------------------- CIFAR format, augmentation


@pytest.fixture(scope="module")
def full_cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar_full")
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        write_batch(
            folder / name, rng.integers(0, 256, (10_000, 3072), np.uint8), np.arange(10_000) % 10, 2 + i % 4
        )
    return root


@pytest.mark.slow
def test_full_cifar_root_loads_50000_and_10000(full_cifar_root):
    task = load_task("cifar10", split_seed=0, root=full_cifar_root)
    assert (len(task.train), len(task.test)) == (50_000, 10_000)
    assert task.info["verified"] == "shape-only"  # synthetic pixels are not the published arrays
    small = load_task("cifar10", split_seed=0, root=full_cifar_root, train_size=1000, test_size=500)
    assert torch.bincount(small.train.labels).tolist() == [100] * 10
    assert torch.bincount(small.test.labels).tolist() == [50] * 10


def test_bad_cifar_batches_get_one_line_errors(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    kw = {"split_seed": 0, "root": tmp_path, "pool": "test_batch", "train_size": 50, "test_size": 50}
    write_batch(folder / "test_batch", np.zeros((100, 3000), np.uint8), np.arange(100) % 10)
    one_line_error(r"expected uint8 \(N, 3072\)", "cifar10", **kw)
    write_batch(folder / "test_batch", np.zeros((100, 3072), np.uint8), np.arange(100) % 11)
    one_line_error("labels outside 0..9", "cifar10", **kw)
    write_batch(folder / "test_batch", np.zeros((100, 3072), np.uint8), np.arange(100) % 10)
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:5000])
    one_line_error("truncated or corrupt", "cifar10", **kw)

    class Evil:
        def __reduce__(self):
            return (os.remove, (str(tmp_path / "victim"),))

    (tmp_path / "victim").touch()
    (folder / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    one_line_error("refusing to load", "cifar10", **kw)
    assert (tmp_path / "victim").exists()  # the pickle could not run code


@pytest.fixture(scope="module")
def syn_cifar() -> data.Task:
    return load_task("synthetic_cifar", split_seed=0, n_train=300, n_test=100)


def test_augmented_batches_are_reproducible_and_seed_dependent(syn_cifar):
    a, ya = all_batches(syn_cifar.train, 64, **gens(0))
    b, yb = all_batches(syn_cifar.train, 64, **gens(0))
    c, _ = all_batches(syn_cifar.train, 64, **gens(1))
    assert torch.equal(a, b) and torch.equal(ya, yb) and not torch.equal(a, c)
    assert a.shape == (300, 3, 32, 32) and a.dtype == torch.float32
    assert sorted(ya.tolist()) == sorted(syn_cifar.train.labels.tolist())


def test_augmentation_is_a_zero_padded_shift_with_optional_exact_mirror(syn_cifar):
    x, _ = all_batches(syn_cifar.train, 50, augment=torch.Generator().manual_seed(5))  # sequential order
    got = unnormalize(x).numpy()
    padded = np.pad(syn_cifar.train.images.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)))
    flipped, offsets = 0, set()
    for i in range(len(got)):
        matches = [
            (dy, dx, flip)
            for dy in range(9)
            for dx in range(9)
            for flip in (False, True)
            if np.array_equal(padded[i, :, dy : dy + 32, dx : dx + 32][..., :: -1 if flip else 1], got[i])
        ]
        assert matches, f"image {i} is not an in-bounds crop (+flip) of the original"
        flipped += all(flip for _, _, flip in matches)
        offsets.add(matches[0][:2])
    assert 0.3 < flipped / len(got) < 0.7 and len(offsets) > 20


def test_test_batches_are_normalized_originals_in_order(syn_cifar):
    x, y = all_batches(
        syn_cifar.test, 32, augment=torch.Generator().manual_seed(0)
    )  # augment ignored on test
    assert torch.equal(unnormalize(x), syn_cifar.test.images) and torch.equal(y, syn_cifar.test.labels)
    assert syn_cifar.test.num_batches(32) == 4 and [len(b) for _, b in syn_cifar.test.batches(32)][-1] == 4


# ---------------------------------------------------------------- HSI pipeline (synthetic scene, small .mat files)


def test_hsi_split_is_seeded_and_stratified():
    a = load_task("synthetic_hsi", split_seed=1)
    b = load_task("synthetic_hsi", split_seed=1)
    c = load_task("synthetic_hsi", split_seed=2)
    assert np.array_equal(a.test_coords, b.test_coords) and not np.array_equal(a.test_coords, c.test_coords)
    counts = np.bincount(a.gt[a.gt >= 0])
    train_counts = torch.bincount(a.train.labels, minlength=a.num_classes).numpy()
    assert np.all(np.abs(train_counts - 0.3 * counts) <= 1)
    assert len(a.train) + len(a.test) == counts.sum() and a.in_shape == (1, 15, 9, 9)
    x1, y1 = all_batches(a.train, 100, order=torch.Generator().manual_seed(0))
    x2, y2 = all_batches(a.train, 100, order=torch.Generator().manual_seed(0), augment=torch.Generator())
    assert torch.equal(x1, x2) and torch.equal(y1, y2)  # no augmentation for hyperspectral


def test_test_per_class_caps_each_class():
    task = load_task("synthetic_hsi", split_seed=0, test_per_class=25)
    assert torch.bincount(task.test.labels).tolist() == [25] * task.num_classes


def test_fingerprint_follows_content_preparation_and_split_only():
    """The dataset digest MLflow shows: equal exactly when a run trains and tests on the same data."""
    base = load_task("synthetic_hsi", split_seed=0)
    assert load_task("synthetic_hsi", split_seed=0).fingerprint == base.fingerprint
    assert load_task("synthetic_hsi", split_seed=0, device="cpu").fingerprint == base.fingerprint
    changed = [
        load_task("synthetic_hsi", split_seed=1),  # another split
        load_task("synthetic_hsi", split_seed=0, pca=12),  # another preparation
        load_task("synthetic_hsi", split_seed=0, window=7),
        load_task("synthetic_hsi", split_seed=0, data_seed=1),  # other content
    ]
    assert len({base.fingerprint, *(t.fingerprint for t in changed)}) == 5
    assert changed[0].info["content_sha256"] == base.info["content_sha256"]
    assert changed[3].info["content_sha256"] != base.info["content_sha256"]
    images = [load_task("synthetic_cifar", split_seed=s, n_train=40, n_test=20) for s in (0, 1)]
    assert images[0].fingerprint == images[1].fingerprint  # split_seed draws nothing here
    assert (
        load_task("synthetic_cifar", split_seed=0, n_train=41, n_test=19).fingerprint != images[0].fingerprint
    )


def test_pca_fit_train_differs_from_all():
    a = load_task("synthetic_hsi", split_seed=0)
    t = load_task("synthetic_hsi", split_seed=0, pca_fit="train")
    assert np.array_equal(a.test_coords, t.test_coords)
    assert not torch.allclose(a.train.padded, t.train.padded)
    assert a.info["pca_explained_variance"] != t.info["pca_explained_variance"]


def brute_leakage(train_rc: np.ndarray, test_rc: np.ndarray, window: int) -> float:
    r = window // 2
    dist = np.abs(test_rc[:, None, :] - train_rc[None, :, :]).max(-1)  # Chebyshev distance
    return float((dist <= r).any(1).mean())


def test_leakage_matches_brute_force():
    rng = np.random.default_rng(0)
    for window in (1, 3, 9):
        pixels = rng.permutation(30 * 20)[:200]
        rc = np.stack([pixels // 20, pixels % 20], 1)
        train, test = rc[:40], rc[40:]
        assert data.splits.leakage(train, test, (30, 20), window) == pytest.approx(
            brute_leakage(train, test, window)
        )
    assert data.splits.leakage(rc[:1], rc[1:], (30, 20), 1) == 0.0


def test_spatial_split_whole_blocks_a_gap_and_no_leakage():
    task = load_task("synthetic_hsi", split_seed=1, split="spatial", block=12)
    info, width = task.info, 48
    assert info["split"] == "spatial" and info["block"] == 12 and info["leakage"] == 0.0
    train_rc = np.stack([task.train_ids // width, task.train_ids % width], 1)
    assert np.array_equal(task.test_coords, np.stack([task.test_ids // width, task.test_ids % width], 1))
    assert brute_leakage(train_rc, task.test_coords, 9) == 0.0
    assert not set(task.train_ids) & set(task.test_ids)
    train_blocks = {(r // 12, c // 12) for r, c in train_rc}
    assert not {(r // 12, c // 12) for r, c in task.test_coords} & train_blocks  # whole blocks
    labelled = int((task.gt >= 0).sum())
    assert info["n_train"] + info["n_test"] + info["gap_pixels"] == labelled and info["gap_pixels"] > 0
    again = load_task("synthetic_hsi", split_seed=1, split="spatial", block=12)
    other = load_task("synthetic_hsi", split_seed=2, split="spatial", block=12)
    assert np.array_equal(again.train_ids, task.train_ids) and not np.array_equal(
        other.train_ids, task.train_ids
    )
    rand = load_task("synthetic_hsi", split_seed=1)
    assert rand.info["split"] == "random" and rand.info["leakage"] > 0.9 and "block" not in rand.info
    capped = load_task("synthetic_hsi", split_seed=1, split="spatial", block=12, test_per_class=5)
    assert torch.bincount(capped.test.labels).max() <= 5


def test_spatial_split_names_a_class_it_cannot_split(tmp_path):
    gt = np.ones((24, 24), np.uint8)
    gt[:, 12:] = 2
    gt[1:4, 1:4] = 3  # one small patch: a single block holds all of class 3
    cube = np.random.default_rng(0).normal(size=(24, 24, 6)) + gt[..., None]
    scipy.io.savemat(tmp_path / "s.mat", {"cube": cube, "gt": gt})
    mat = {"cube_path": tmp_path / "s.mat", "gt_path": tmp_path / "s.mat", "cube_key": "cube", "gt_key": "gt"}
    for seed in range(4):
        task = load_task("hsi_mat", split_seed=seed, pca=3, window=3, split="spatial", block=6, **mat)
        assert task.num_classes == 3 and task.info["one_sided_classes"] == "class_3"
        assert task.info["leakage"] == 0.0


def test_window_larger_than_the_scene_is_refused_before_any_work():
    one_line_error(
        r"window=49 is larger than the 48x48 scene: use an odd window of at most 47",
        "synthetic_hsi",
        split_seed=0,
        window=49,
    )
    one_line_error("option split must be 'random'", "synthetic_hsi", split_seed=0, split="blocks")
    one_line_error("block sets the block side of split = 'spatial'", "synthetic_hsi", split_seed=0, block=8)
    one_line_error("option block must be", "synthetic_hsi", split_seed=0, split="spatial", block=0)
    one_line_error(
        "every labelled pixel on one side", "synthetic_hsi", split_seed=0, split="spatial", block=48
    )


def write_scene(tmp_path, ids=(0, 3, 7, 12)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gt = rng.choice(np.array(ids, np.uint8), size=(20, 16))
    cube = rng.normal(size=(20, 16, 10)) + gt[..., None]
    scipy.io.savemat(tmp_path / "cube.mat", {"scene": cube})
    scipy.io.savemat(tmp_path / "gt.mat", {"labels": gt, "note": np.ones((3, 3, 3))})
    return cube, gt


def test_non_contiguous_label_ids_map_to_0_to_c(tmp_path):
    _, gt = write_scene(tmp_path)
    task = load_task(
        "hsi_mat", split_seed=0, cube_path=tmp_path / "cube.mat", gt_path=tmp_path / "gt.mat", pca=5, window=3
    )
    assert (
        task.label_ids == [3, 7, 12]
        and task.num_classes == 3
        and task.class_names == ["class_3", "class_7", "class_12"]
    )
    lut = {0: -1, 3: 0, 7: 1, 12: 2}
    assert np.array_equal(task.gt, np.vectorize(lut.get)(gt))
    _, y = all_batches(task.test)
    assert y.tolist() == [lut[gt[r, c]] for r, c in task.test_coords]


def test_bad_hsi_inputs_get_one_line_errors(tmp_path):
    write_scene(tmp_path)
    mat = {"cube_path": tmp_path / "cube.mat", "gt_path": tmp_path / "gt.mat", "pca": 5, "window": 3}
    cases = [
        ({"window": 4}, "window must be odd"),
        ({"pca": 11}, "exceeds the 10 bands"),
        ({"train_fraction": 0.0}, r"train_fraction must be a number in \(0, 1\)"),
        ({"train_fraction": 1.0}, r"train_fraction must be a number in \(0, 1\)"),
        ({"pca_fit": "test"}, "pca_fit must be"),
        ({"cube_key": "nope"}, r"variable 'nope' is not in .*cube.mat \(variables found: scene"),
        ({"gt_path": tmp_path / "cube.mat"}, "cannot tell which variable .* ground truth"),
        ({"gt_path": tmp_path / "missing.mat"}, "no file at"),
    ]
    for options, pattern in cases:
        one_line_error(pattern, "hsi_mat", split_seed=0, **{**mat, **options})
    (tmp_path / "bad.mat").write_bytes((tmp_path / "cube.mat").read_bytes()[:300])
    one_line_error(
        "truncated or not a MATLAB file",
        "hsi_mat",
        split_seed=0,
        **{**mat, "cube_path": tmp_path / "bad.mat"},
    )
    p = tmp_path / "one.mat"
    scipy.io.savemat(p, {"c": np.ones((4, 4, 3)), "g": np.array([[1, 2, 2, 0]] + [[2, 0, 0, 2]] * 3)})
    one_line_error(
        "'class_1' has 1 labelled pixel", "hsi_mat", split_seed=0, cube_path=p, gt_path=p, pca=2, window=1
    )
    one_line_error(
        r"salinas not found: expected .*Salinas_corrected.mat.*--data-root",
        "salinas",
        split_seed=0,
        root=tmp_path,
    )


def test_wrong_scene_in_a_named_folder_is_rejected(tmp_path):
    folder = tmp_path / "indian_pines"
    folder.mkdir()
    rng = np.random.default_rng(0)
    scipy.io.savemat(
        folder / "Indian_pines_corrected.mat",
        {"indian_pines_corrected": rng.integers(0, 9, (145, 145, 200), np.uint8)},
    )
    scipy.io.savemat(folder / "Indian_pines_gt.mat", {"wrong_name": np.ones((145, 145), np.uint8)})
    one_line_error("variable 'indian_pines_gt' is not in", "indian_pines", split_seed=0, root=tmp_path)
    scipy.io.savemat(folder / "Indian_pines_gt.mat", {"indian_pines_gt": rng.integers(0, 3, (145, 145))})
    one_line_error("not the expected scene", "indian_pines", split_seed=0, root=tmp_path)


# ---------------------------------------------------------------- API surface


def test_registry_options_and_errors(monkeypatch, tmp_path):
    assert {"cifar10", "indian_pines", "salinas_a", "pavia_u", "hsi_mat", "synthetic_hsi"} <= set(
        data.list_datasets()
    )
    assert data.dataset_options("indian_pines") == {
        "pca": 30, "window": 25, "train_fraction": 0.3, "test_per_class": None, "pca_fit": "all", "whiten": True,
        "split": "random", "block": None,
    }  # fmt: skip
    with pytest.raises(DataError, match="unknown dataset 'mnist'; known datasets: cifar10"):
        data.dataset_options("mnist")
    with pytest.raises(
        DataError, match="unknown option 'windw' for dataset 'synthetic_hsi'; valid options: .*window"
    ):
        load_task("synthetic_hsi", split_seed=0, windw=5)
    with pytest.raises(DataError, match="split_seed"):
        load_task("synthetic_hsi", split_seed=2**32)
    monkeypatch.setenv("SEEDVAR_DATA_ROOT", str(tmp_path))
    assert data.data_root() == tmp_path and data.data_root("~/d") == Path.home() / "d"
    monkeypatch.delenv("SEEDVAR_DATA_ROOT")
    assert data.data_root().parts[-3:] == (".cache", "seedvar", "datasets")


# ---------------------------------------------------------------- learnability and devices


def fit(task: data.Task, model: nn.Module, steps: int) -> float:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    order, augment, done = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1), 0
    while done < steps:
        for x, y in task.train.batches(64, order=order, augment=augment):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
    with torch.no_grad():
        x, y = all_batches(task.test)
        return (model(x).argmax(1) == y).float().mean().item()


def test_synthetic_datasets_are_learnable():
    img = load_task("synthetic_cifar", split_seed=0)
    acc = fit(img, nn.Sequential(nn.AvgPool2d(8), nn.Flatten(), nn.Linear(48, 10)), 40)
    assert acc > 0.5, f"synthetic_cifar accuracy {acc:.2f} (chance 0.10)"
    hsi = load_task("synthetic_hsi", split_seed=0)
    majority = torch.bincount(hsi.test.labels).max().item() / len(hsi.test)
    acc = fit(hsi, nn.Sequential(nn.Flatten(), nn.Linear(15 * 9 * 9, 4)), 40)
    assert acc > max(0.6, majority + 0.2), f"synthetic_hsi accuracy {acc:.2f} (majority {majority:.2f})"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_generators_give_the_same_batches_on_cpu_and_cuda():
    for name in ("synthetic_cifar", "synthetic_hsi"):
        cpu, gpu = (load_task(name, split_seed=0, device=d) for d in ("cpu", "cuda"))
        a, ya = all_batches(cpu.train, 64, **gens(0))
        b, yb = all_batches(gpu.train, 64, **gens(0))
        assert b.device.type == "cuda" and torch.equal(ya, yb.cpu())
        torch.testing.assert_close(a, b.cpu(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- --download, from a server on loopback


@pytest.fixture
def files_server():
    """An HTTP server on 127.0.0.1 serving `files` (URL path -> bytes), which a test may change, and
    counting the requests for each path."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            served.requests[self.path] = served.requests.get(self.path, 0) + 1
            blob = served.files.get(self.path)
            if blob is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

        def log_message(self, *args):
            pass

    served = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.files, served.requests = {}, {}
    served.url = f"http://127.0.0.1:{served.server_address[1]}"
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()


def cifar_archive() -> bytes:
    """A CIFAR-10 python archive as published (cifar-10-batches-py/ with five data batches and the test
    batch), with 100 synthetic images per batch."""
    buffer = io.BytesIO()
    rng = np.random.default_rng(1)
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]:
            blob = pickle.dumps(
                {"data": rng.integers(0, 256, (100, 3072), np.uint8), "labels": [*range(10)] * 10}
            )
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()


def test_download_cifar10_checks_its_md5(files_server, tmp_path, monkeypatch):
    """--download fetches the archive and checks torchvision's md5 before unpacking: a corrupted archive is
    a one-line error and nothing is unpacked; the next download of a good archive replaces it."""
    good = cifar_archive()
    monkeypatch.setattr(images, "CIFAR_URL", f"{files_server.url}/cifar-10-python.tar.gz")
    monkeypatch.setattr(images, "CIFAR_MD5", hashlib.md5(good).hexdigest())
    corrupt = bytearray(good)
    corrupt[len(good) // 2] ^= 0xFF
    files_server.files["/cifar-10-python.tar.gz"] = bytes(corrupt)
    kw = {"split_seed": 0, "root": tmp_path, "download": True, "train_size": 100, "test_size": 50}
    with pytest.raises(DataError) as err:
        load_task("cifar10", **kw)
    assert str(err.value).startswith(f"downloading {images.CIFAR_URL} failed") and "\n" not in str(err.value)
    assert not (tmp_path / "cifar10" / "cifar-10-batches-py").exists()  # nothing unpacked
    files_server.files["/cifar-10-python.tar.gz"] = good
    task = load_task("cifar10", **kw)
    assert (len(task.train), len(task.test)) == (100, 50) and task.info["verified"] == "shape-only"
    served = files_server.requests["/cifar-10-python.tar.gz"]
    load_task("cifar10", **kw)  # files present: no download
    assert files_server.requests["/cifar-10-python.tar.gz"] == served


def indian_pines_files() -> dict[str, bytes]:
    """The published Indian Pines .mat files (from the arrays tensorly ships), by file name."""
    scene = scenes._tensorly_scene()
    assert scene is not None, "tensorly ships Indian Pines"
    out = {}
    for file, key, array in (
        ("Indian_pines_corrected.mat", "indian_pines_corrected", scene.cube),
        ("Indian_pines_gt.mat", "indian_pines_gt", scene.gt),
    ):
        buffer = io.BytesIO()
        scipy.io.savemat(buffer, {key: array})
        out[file] = buffer.getvalue()
    return out


def test_download_indian_pines_checks_the_content_sha256(files_server, tmp_path, monkeypatch):
    """--download fetches a scene's two files, then checks their content against the published sha256:
    a corrupted file is a one-line error and is not kept (a rerun downloads it again)."""
    spec = scenes.SCENES["indian_pines"]
    monkeypatch.setitem(
        scenes.SCENES,
        "indian_pines",
        dataclasses.replace(
            spec, cube_url=f"{files_server.url}/cube.mat", gt_url=f"{files_server.url}/gt.mat"
        ),
    )
    good = indian_pines_files()
    scene = scenes._tensorly_scene()
    cube = scene.cube.copy()
    cube[70, 70, 100] += 1  # one value of 4 million
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"indian_pines_corrected": cube})
    files_server.files.update({"/cube.mat": buffer.getvalue(), "/gt.mat": good["Indian_pines_gt.mat"]})
    folder = tmp_path / "indian_pines"
    kw = {"split_seed": 0, "root": tmp_path, "download": True}
    with pytest.raises(DataError) as err:
        load_task("indian_pines", **kw)
    message = str(err.value)
    assert "differs from the published indian_pines cube" in message and "deleted" in message
    assert "\n" not in message
    assert not (folder / "Indian_pines_corrected.mat").exists()  # not kept: the next try downloads again
    files_server.files["/cube.mat"] = good["Indian_pines_corrected.mat"]
    task = load_task("indian_pines", **kw)
    assert task.info["verified"] == "sha256" and task.info["source"] == str(
        folder / "Indian_pines_corrected.mat"
    )
    assert files_server.requests["/cube.mat"] >= 2 and files_server.requests["/gt.mat"] >= 1
