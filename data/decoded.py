"""Images decoded once: any dataset's samples as uint8 (N, C, H, W) arrays with int64 labels, cached on disk
under a fingerprint of the source files and the decoding options (`<data root>/decoded/<key>.npz`, else
~/.cache/seedvar/decoded), and in memory for the process."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from seedvar.data.core import DataError, brief, data_root

# Bump when decoding changes, so caches written by an older seedvar are not reused.
DECODE_VERSION = 1
MODES = ("L", "RGB")


def _target_mode(image_mode: str) -> str:
    return "L" if image_mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB"


def _as_chw(sample: object, mode: str | None, resize: tuple[int, int] | None, where: str) -> np.ndarray:
    """One image as uint8 (C, H, W) in `mode` (None: the image's own, as L or RGB), resized if asked."""
    from torchvision.transforms import functional as TF  # torchvision only where used (data/vision.py)

    if isinstance(sample, torch.Tensor):
        if sample.dtype != torch.uint8 or sample.ndim not in (2, 3):
            raise DataError(
                f"{where} is a {sample.dtype} tensor of shape {tuple(sample.shape)}, not a uint8 image"
            )
        sample = TF.to_pil_image(sample if sample.ndim == 3 else sample[None])
    if not isinstance(sample, Image.Image):
        raise DataError(f"{where} is a {type(sample).__name__}, not an image")
    image = sample.convert(mode or _target_mode(sample.mode))
    if resize is not None:
        image = TF.resize(image, list(resize))
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _label(target: object, where: str) -> int:
    if isinstance(target, torch.Tensor) and target.numel() == 1:
        target = target.item()
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return int(target)
    raise DataError(f"{where} has a target of type {type(target).__name__}, not a class index")


def decode(
    dataset: Any, name: str, mode: str | None, resize: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Every sample of a dataset as uint8 images (N, C, H, W) and int64 labels; one shape, one mode."""
    n = len(dataset)
    if n == 0:
        raise DataError(f"{name} holds no images")
    images: np.ndarray | None = None
    labels = np.empty(n, dtype=np.int64)
    first_mode = None
    for i in range(n):
        where = f"{name} sample {i}"
        try:
            sample, target = dataset[i]
        except DataError:
            raise
        except Exception as e:  # unreadable or corrupt file
            raise DataError(f"cannot read {where} ({brief(e)}): fix or remove the file") from None
        if mode is None and isinstance(sample, Image.Image):
            own = _target_mode(sample.mode)
            first_mode = first_mode or own
            if own != first_mode:
                raise DataError(
                    f'{where} is {sample.mode} while sample 0 is {first_mode}: set mode = "RGB" (or "L") in [dataset]'
                )
        array = _as_chw(sample, mode or first_mode, resize, where)
        if images is None:
            images = np.empty((n, *array.shape), dtype=np.uint8)
        elif array.shape != images.shape[1:]:
            c, h, w = images.shape[1:]
            raise DataError(
                f"{where} is {array.shape[1]}x{array.shape[2]}, sample 0 is {h}x{w}: "
                f"set resize = [H, W] in [dataset] to bring every image to one size"
            )
        images[i] = array
        labels[i] = _label(target, where)
    assert images is not None
    return images, labels


def fingerprint_files(files: list[Path], base: Path) -> list[tuple[str, str]]:
    """(path relative to base, sha256 of its bytes) per file: the content that the decoded cache stands for."""
    out = []
    for path in files:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(block)
        out.append((str(path.relative_to(base)) if path.is_relative_to(base) else str(path), h.hexdigest()))
    return out


Pools = dict[str, np.ndarray]
_MEMO: OrderedDict[str, Pools] = OrderedDict()  # decoded sets of this process, by fingerprint


def _cache_files(root: str | Path | None, key: str) -> list[Path]:
    """Where a decoded set is cached: under the data root, else ~/.cache/seedvar (when the root is read-only)."""
    return [
        data_root(root) / "decoded" / f"{key}.npz",
        Path.home() / ".cache" / "seedvar" / "decoded" / f"{key}.npz",
    ]


def cached(key: str, root: str | Path | None, build: Callable[[], Pools]) -> tuple[Pools, str]:
    """Decoded arrays for a fingerprint: from memory, from the disk cache, or built once and cached."""
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key], "memory"
    pools, how = None, "decoded"
    for path in _cache_files(root, key):
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    pools, how = {k: npz[k] for k in npz.files}, "disk cache"
                break
            except Exception:  # a truncated or damaged cache file is rebuilt
                pools = None
    if pools is None:
        pools = build()
        for path in _cache_files(root, key):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
                    np.savez(f, **pools)
                os.chmod(f.name, 0o644)
                os.replace(f.name, path)  # atomic: a reader never sees half a file
                break
            except OSError:
                continue  # read-only location: try the next, else keep it in memory only
    _MEMO[key] = pools
    while len(_MEMO) > 2:
        _MEMO.popitem(last=False)
    return pools, how


def cache_key(description: dict[str, Any]) -> str:
    blob = json.dumps({**description, "decode": DECODE_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
