"""Prediction flips: how many test samples change class between two passes of one model (flip rate),
and between two trained models (churn); and the accuracy of each pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def pass_accuracy(preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy (fraction) of each pass of (K, N) predictions."""
    return (preds == labels[None, :]).mean(axis=1)


def flip_rate(preds: np.ndarray) -> float:
    """Mean over all pairs of passes of the fraction of samples whose predicted class differs.

    ``preds`` is (K passes, N samples). Per sample, the number of agreeing pairs is sum_c C(count_c, 2);
    it is found by sorting each column and counting, for every element, the earlier equal elements of
    its run, so the cost is O(K N log K) with no (N, classes) table. K < 2 -> nan.
    """
    p = np.asarray(preds)
    if p.ndim != 2:
        raise ValueError(f"preds must be 2-D (passes, samples), got shape {p.shape}")
    k, n = p.shape
    if k < 2:
        return float("nan")
    if n == 0:
        raise ValueError("preds has no samples")
    s = np.sort(p, axis=0)
    starts = np.ones_like(s, dtype=bool)
    starts[1:] = s[1:] != s[:-1]
    rows = np.arange(k)[:, None]
    run_start = np.maximum.accumulate(np.where(starts, rows, 0), axis=0)
    agreeing = int(np.sum(rows - run_start))  # sum over samples of sum_c C(count_c, 2)
    pairs = k * (k - 1) // 2
    return 1.0 - agreeing / (pairs * n)


def churn(a: ArrayLike, b: ArrayLike) -> float:
    """Fraction of samples on which two prediction vectors disagree."""
    x, y = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"prediction vectors differ in length ({x.size} vs {y.size})")
    if x.size == 0:
        raise ValueError("prediction vectors are empty")
    return float(np.mean(x != y))


def mean_churn(models: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Churn over every pair of trained models, given as (test sample ids, predictions): the share of
    (pair, shared test sample) comparisons that disagree, so each pair is compared on the samples both
    were tested on (their splits may differ) and weighs by how many those are. When every model saw the
    same samples this is exactly the mean of the pairs' churns. nan when no pair shares a sample.

    Linear in the number of models: per sample, of its C(k, 2) pairs of the k models tested on it,
    sum_c C(k_c, 2) agree (k_c of them predict class c), so no pair is formed.
    """
    if len(models) < 2:
        return float("nan")
    ids = [np.asarray(i).reshape(-1) for i, _ in models]
    preds = [np.asarray(p).reshape(-1) for _, p in models]
    union, where = np.unique(np.concatenate(ids), return_inverse=True)
    classes = np.unique(np.concatenate(preds), return_inverse=True)[1]
    counts = np.bincount(classes * union.size + where.reshape(-1)).astype(float)  # (class, sample) counts
    k_c = np.pad(counts, (0, -counts.size % union.size)).reshape(-1, union.size)
    k = k_c.sum(axis=0)
    compared = float((k * (k - 1)).sum() / 2)
    agree = float((k_c * (k_c - 1)).sum() / 2)
    return (compared - agree) / compared if compared else float("nan")
