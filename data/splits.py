"""Which labelled pixels of a scene train and which test: a stratified random pixel split, or whole spatial
blocks with a gap so that no test window holds a training pixel; and how much the test windows leak."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from sklearn.model_selection import train_test_split

from seedvar.data.core import DataError, brief

SPLITS = ("random", "spatial")


def pixel_split(
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


def spatial_split(
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
