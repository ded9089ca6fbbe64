"""Prediction flips: how many test samples change class between two passes of one model (flip rate),
and between two trained models (churn)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from seedvar.results import flip_rate  # defined beside PassSummary, whose flip_rate field it computes

__all__ = ["churn", "flip_rate", "mean_churn"]


def churn(a: ArrayLike, b: ArrayLike) -> float:
    """Fraction of samples on which two prediction vectors disagree."""
    x, y = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"prediction vectors differ in length ({x.size} vs {y.size})")
    if x.size == 0:
        raise ValueError("prediction vectors are empty")
    return float(np.mean(x != y))


def mean_churn(models: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean churn over every pair of trained models, given as (test sample ids, predictions): each pair
    is compared on the test samples both were tested on (their splits may differ). nan when no pair
    shares a sample."""
    values = []
    for i, (ids_a, pred_a) in enumerate(models):
        for ids_b, pred_b in models[i + 1 :]:
            common, ia, ib = np.intersect1d(ids_a, ids_b, return_indices=True)
            if len(common):
                values.append(churn(np.asarray(pred_a)[ia], np.asarray(pred_b)[ib]))
    return float(np.mean(values)) if values else float("nan")
