"""Degenerate conditions: trained models at chance level or predicting one class.

A seed sweep of models that did not learn (running BatchNorm statistics not settled after a few
epochs, a diverged optimizer) still yields numbers, and a ranking of such conditions ranks noise. These
checks find them so the report can say so and draw no power or ranking from them.

Ties are data, not degeneracy: models that all score 100%, or all 99.60%, learned alike (a hyperspectral
scene at 3 seeds ties in a quarter to two fifths of studies). `tied` is reported, and the intervals and
tests treat such a condition through the test set's resolution (seedvar.stats.interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from seedvar.stats.interval import ALPHA, flat_dict


def chance_level(labels: ArrayLike) -> float:
    """Accuracy of always predicting the most frequent test class: what a model that learned nothing gets."""
    y = np.asarray(labels).reshape(-1)
    if y.size == 0:
        raise ValueError("labels are empty")
    return float(np.bincount(y - y.min()).max() / y.size)


def at_chance(correct: int, n: int, chance: float, *, alpha: float = ALPHA) -> bool:
    """True when `correct` of `n` is not significantly above `chance` (one-sided exact binomial test)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    return bool(stats.binomtest(int(correct), int(n), float(chance), alternative="greater").pvalue >= alpha)


def one_class(preds: ArrayLike) -> bool:
    """Every pass of (K, N) predictions names a single class for all samples."""
    p = np.asarray(preds)
    p = p.reshape(1, -1) if p.ndim == 1 else p
    return bool(np.all(p.min(axis=1) == p.max(axis=1)))


@dataclass(frozen=True)
class Flags:
    """What is degenerate about one condition in one test mode."""

    models: int
    chance: float  # mean chance level over the models' test sets
    at_chance: int  # models not significantly above chance
    one_class: int  # models whose every pass predicts one class
    tied: bool  # 2+ models and all give the same mean accuracy: data (they learned alike), not a failure

    @property
    def degenerate(self) -> bool:
        """Every model at chance or predicting one class: nothing learned to compare."""
        return self.at_chance == self.models or self.one_class == self.models

    @property
    def suspect(self) -> bool:
        """Some models failed: worth a warning, but the condition still varies and can be compared."""
        return self.at_chance > 0 or self.one_class > 0

    def as_dict(self) -> dict[str, Any]:
        return {**flat_dict(self), "degenerate": self.degenerate, "suspect": self.suspect}


def flags(models: list[tuple[ArrayLike, ArrayLike]], *, alpha: float = ALPHA) -> Flags:
    """Flags for one condition and mode from each trained model's (predictions (K, N), labels (N,)).

    A model is at chance when its mean number of correct predictions per pass is not significantly
    above the chance level of its own test labels.
    """
    if not models:
        raise ValueError("no models")
    chances, means, n_chance, n_one = [], [], 0, 0
    for preds, labels in models:
        p = np.asarray(preds)
        p = p.reshape(1, -1) if p.ndim == 1 else p
        y = np.asarray(labels).reshape(-1)
        c = chance_level(y)
        correct = (p == y[None, :]).sum(axis=1).mean()
        chances.append(c)
        means.append(correct / y.size)
        n_chance += at_chance(round(correct), y.size, c, alpha=alpha)
        n_one += one_class(p)
    zero = len(means) > 1 and float(np.ptp(means)) == 0.0
    return Flags(len(models), float(np.mean(chances)), n_chance, n_one, zero)
