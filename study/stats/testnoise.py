"""How much of the seed-to-seed spread of test accuracy is the finite test set, and how much the models.

Each test sample is a coin flip for a trained model, so accuracy on n samples varies across models even
if their distribution-level accuracy were equal (Jordan 2023, "On the variance of neural network
training with respect to test sets and distributions"). Split the test samples at random into halves
A and B (stratified by class); across trained models, cov(acc_A, acc_B) estimates the variance of the
models' distribution-level accuracy, because the two halves share the model but none of the samples.
var(acc on all samples) minus that covariance is test-set sampling noise. Averaging over several random
halvings removes the halving's own noise.

Intervals: the test-set part averages per-sample disagreements over thousands of test samples and is
known far better than the seed variance it is a part of, so the intervals come from the seed variance
alone: (m - 1) var / sigma^2 ~ chi2(m - 1) over m models (hulled with Bonett's kurtosis-robust interval
from 10 models, or 5 that look non-normal: `interval.variance_interval`), the test-set part held at its
estimate. In
simulations of binomial test sets (benchmarks/coverage.py) the share's interval covers 93-96% from 3 to 30
models; a bootstrap over the trained models covers about 85% at 10.

The binomial term p(1 - p) / n is an upper bound on the test-set part, not a floor: each model's own
test-set variance is mean_j q_j (1 - q_j) / n over its samples' chances q_j of being right, at most
p(1 - p) / n by Jensen's inequality.

Models tested on different samples (a varied split) are matched by sample id: each model's accuracy
on a half is over the samples of that half it was tested on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from seedvar.stats.interval import LEVEL, NAN_PAIR, check_level, flat_dict, variance_interval

HALVING_SEED = 20230601  # fixed, so a report is reproducible; reported beside every estimate
HALVINGS = 200  # the halving's own noise shrinks as 1/sqrt(halvings): ~3% of the test-set part


@dataclass(frozen=True)
class TestNoise:
    """Variance of per-model accuracy (fractions squared) split into the models and the finite test set.

    ``total`` = var(acc) over trained models (ddof=1); ``models`` = mean over halvings of
    cov(acc_A, acc_B); ``test_set`` = total - models; ``share_test_set`` = test_set / total (nan when
    total is 0). ``binomial_bound`` = p(1-p)/n: the test-set variance if every sample were an independent
    coin flip at the mean accuracy p, at the mean number n of test samples per model; an upper bound on
    the test-set part.
    """

    __test__ = False  # not a pytest class

    models_n: int
    samples: float
    accuracy: float
    total: float
    models: float
    test_set: float
    share_test_set: float
    total_ci: tuple[float, float]
    models_ci: tuple[float, float]
    share_test_set_ci: tuple[float, float]
    binomial_bound: float
    halvings: int
    seed: int
    ci_method: str
    normality_p: float = float("nan")  # Shapiro-Wilk on the models' accuracies

    def as_dict(self) -> dict[str, Any]:
        return flat_dict(self)


def correctness_matrix(
    models: Sequence[tuple[ArrayLike, ArrayLike, ArrayLike]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, labels, predictions) per trained model -> (sample ids, their labels, correctness (M, N)).

    The columns are the union of the models' test samples, matched by id; a model not tested on a
    sample has nan there.
    """
    if not models:
        raise ValueError("no models")
    ids = np.unique(np.concatenate([np.asarray(m[0]).reshape(-1) for m in models]))
    labels = np.full(ids.size, -1, dtype=np.int64)
    correct = np.full((len(models), ids.size), np.nan)
    for i, (mid, lab, pred) in enumerate(models):
        mid, lab, pred = (np.asarray(a).reshape(-1) for a in (mid, lab, pred))
        if not (mid.size == lab.size == pred.size):
            raise ValueError(f"model {i}: ids, labels and predictions differ in length")
        col = np.searchsorted(ids, mid)
        seen = labels[col] >= 0
        if np.any(labels[col][seen] != lab[seen]):
            raise ValueError(f"model {i}: a sample id carries another label than in an earlier model")
        labels[col] = lab
        correct[i, col] = pred == lab
    return ids, labels, correct


def halves(labels: ArrayLike, halvings: int = HALVINGS, seed: int = HALVING_SEED) -> np.ndarray:
    """(halvings, N) bool: True for half A. Each row is a class-stratified random halving: every class
    puts floor(n_c / 2) of its samples, or at random one more when n_c is odd, into A.

    Vectorized over halvings (sorting random keys within classes): sklearn's StratifiedKFold gives the
    same kind of halving one call at a time, ~100x slower for the hundreds a report draws.
    """
    y = np.asarray(labels).reshape(-1)
    _, cls = np.unique(y, return_inverse=True)
    counts = np.bincount(cls)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    order = np.argsort(cls + rng.random((halvings, y.size)), axis=1)  # grouped by class, shuffled within
    rank = np.arange(y.size)[None, :] - start[cls[order]]  # position within its class
    size_a = counts // 2 + (rng.random((halvings, counts.size)) < 0.5) * (counts % 2)
    out = np.zeros((halvings, y.size), dtype=bool)
    rows = np.arange(halvings)[:, None]
    out[rows, order] = rank < size_a[rows, cls[order]]
    return out


_LAST: dict[tuple[bytes, str, int, int], np.ndarray] = {}


def _shared_halves(labels: np.ndarray, halvings: int, seed: int) -> np.ndarray:
    """`halves`, computed once for the conditions of a report that share their test labels (a fixed split:
    every model of every condition tested on the same samples)."""
    key = (hashlib.sha256(labels.tobytes()).digest(), labels.dtype.str, halvings, seed)
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = halves(labels, halvings, seed)
    return _LAST[key]


def _half_accuracies(correct: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accuracy of each model on all its samples, and on its samples in halves A and B: (M,), (M, H) x 2."""
    tested = ~np.isnan(correct)
    # counts of 0/1 values: exact in float32 up to 2^24 samples, and float32 products run twice as fast
    x = np.where(tested, correct, 0.0).astype(np.float32)
    t = tested.astype(np.float32)
    af = np.ascontiguousarray(a.T, dtype=np.float32)  # (N, H)
    bf = 1.0 - af
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = x.sum(1, dtype=float) / t.sum(1, dtype=float)
        acc_a = (x @ af).astype(float) / (t @ af).astype(float)
        acc_b = (x @ bf).astype(float) / (t @ bf).astype(float)
    return acc, acc_a, acc_b


def _parts(acc: np.ndarray, diff: np.ndarray) -> tuple[float, float, float, float]:
    """(total, models, test_set, share_test_set) of the models' accuracies.

    ``diff`` is acc_A - acc_B, (M, H). test_set = mean over halvings of var(acc_A - acc_B) / 4 and
    models = total - test_set. With halves of equal size this is exactly models = cov(acc_A, acc_B)
    and test_set = var(acc) - cov(acc_A, acc_B); written this way, halves of unequal size (odd class
    counts, models tested on different samples) cannot leak the large model variance into the small
    test-set part.
    """
    total = float(np.var(acc, ddof=1))
    test_set = float(np.mean(np.var(diff, axis=0, ddof=1))) / 4.0
    share = test_set / total if total > 0 else float("nan")
    return total, total - test_set, test_set, share


def split_seed_variance(
    correct: ArrayLike,
    labels: ArrayLike,
    *,
    halvings: int = HALVINGS,
    seed: int = HALVING_SEED,
    ci: float = LEVEL,
) -> TestNoise:
    """Split the variance of per-model accuracy into distribution-level (models) and test-set parts.

    ``correct`` is (models, samples) of 0/1 with nan where a model was not tested on a sample (see
    :func:`correctness_matrix`); ``labels`` (samples,) stratify the halvings. Intervals: chi-square on the
    seed variance over m models, the test-set part held at its estimate.
    """
    ci = check_level(ci)
    c = np.asarray(correct, dtype=float)
    if c.ndim != 2:
        raise ValueError(f"correct must be 2-D (models, samples), got shape {c.shape}")
    m = c.shape[0]
    if m < 2:
        raise ValueError("test_noise needs at least 2 trained models")
    if halvings < 1:
        raise ValueError(f"halvings must be at least 1, got {halvings}")
    a = _shared_halves(np.asarray(labels).reshape(-1), halvings, seed)
    acc, acc_a, acc_b = _half_accuracies(c, a)
    if np.isnan(acc).any() or np.isnan(acc_a).any() or np.isnan(acc_b).any():
        raise ValueError("a model was tested on no sample of a half: too few test samples")
    total, models, test_set, share = _parts(acc, acc_a - acc_b)
    df = m - 1
    spread = variance_interval(acc, level=ci)
    if total > 0:
        total_ci = spread.ci
        models_ci = (max(total_ci[0] - test_set, 0.0), max(total_ci[1] - test_set, 0.0))
        part = max(test_set, 0.0)
        share_ci = (min(part / total_ci[1], 1.0), min(part / total_ci[0], 1.0))
    else:
        total_ci, models_ci, share_ci = (0.0, 0.0), (0.0, 0.0), NAN_PAIR
    tested = ~np.isnan(c)
    n = float(tested.sum(1).mean())
    p = float(acc.mean())
    return TestNoise(
        models_n=m,
        samples=n,
        accuracy=p,
        total=total,
        models=models,
        test_set=test_set,
        share_test_set=share,
        total_ci=(float(total_ci[0]), float(total_ci[1])),
        models_ci=(float(models_ci[0]), float(models_ci[1])),
        share_test_set_ci=(float(share_ci[0]), float(share_ci[1])),
        binomial_bound=p * (1.0 - p) / n,
        halvings=halvings,
        seed=seed,
        ci_method=(
            f"chi-square on the seed variance over {m} trained models (m - 1 = {df} degrees of freedom)"
            + (", hulled with Bonett's kurtosis-robust interval" if spread.robust else "")
            + f", the test-set part held at its estimate; {halvings} stratified random halvings, seed {seed}"
        ),
        normality_p=spread.normality_p,
    )
