"""The run schema: every name a run writes and the report reads, and the data that carries them.

The engine computes a `RunResult`, the recorder writes it under these names, the analysis reads them
back: a tag, metric or file key that crosses those rooms is spelled here and nowhere else. Numpy only,
so the report can use it without loading torch or MLflow.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODES = ("eval", "train", "mc_dropout")
STOCHASTIC_MODES = ("train", "mc_dropout")

# -- tags ------------------------------------------------------------------------------------------------
TAG_PREFIX = "seedvar."
TAG_KIND = "seedvar.kind"  # KIND_RUN on a trained model's run, KIND_SWEEP on a sweep's parent run
KIND_RUN = "run"
KIND_SWEEP = "sweep"
TAG_CONFIG_HASH = "seedvar.config_hash"
TAG_MODEL = "seedvar.model"
TAG_REPLICATE = "seedvar.replicate"
TAG_VARIED = "seedvar.varied_source"
TAG_VARIANT = "seedvar.variant"  # "split=spatial" when a spec compares values of dataset options
TAG_DETERMINISTIC = "seedvar.deterministic"
TAG_WEIGHTS = "seedvar.weights_sha256"
TAG_FAILURE = "seedvar.failure"
TAG_RESUMED = "seedvar.resumed_from_epoch"
TAG_DEVICE_NAME = "seedvar.device_name"
TAG_SPEC = "seedvar.spec"
TAG_FAILED_RUNS = "seedvar.failed_runs"
TAG_PARENT = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_OWNER = "seedvar.claim_owner"  # which sweep holds a config's claim (tracking servers)
TAG_HEARTBEAT = "seedvar.heartbeat"  # unix time of the claim's last heartbeat
TAG_CHECKPOINT = "seedvar.checkpoint"  # artifact path of the run's current epoch checkpoint
TAG_RAY_NODE = "seedvar.ray_node_id"  # the Ray node that ran the run (--executor ray)

# -- experiment tags and the MLflow UI ---------------------------------------------------------------------
# MLflow 3 opens an experiment in its GenAI view unless the experiment says it trains models.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# The UI keeps shareable views of the runs table as experiment tags, opened by ?viewStateShareKey=<key>.
TAG_VIEW_STATE_PREFIX = "mlflow.sharedViewState."
VIEW_STATE_KEY = "seedvar"
TAG_VIEW_STATE = TAG_VIEW_STATE_PREFIX + VIEW_STATE_KEY

# -- params ----------------------------------------------------------------------------------------------
PARAM_MODEL = "model"
PARAM_REPLICATE = "replicate"
PARAM_SEED_PREFIX = "seed."
PARAM_DATA_PREFIX = "data."  # facts of the loaded data (pixels, PCA variance, ...), logged once per run
PARAM_MODEL_SOURCE = "model_source.sha256"  # sha256 of a user's model file (not logged for built-in models)
# "true" when every stochastic mode ran its trunk once per batch, "false" when any ran K full passes;
# PARAM_TEST_SPLIT says where the model was split, or why it was not.
PARAM_TEST_FUSED = "test.fused"
PARAM_TEST_SPLIT = "test.split"

# -- metrics ---------------------------------------------------------------------------------------------
TRAIN_METRICS = ("loss", "acc", "seconds", "samples_per_s", "lr")  # one value per epoch, step = epoch
METRIC_TOTAL_SECONDS = "time.total_seconds"


def train_metric(name: str) -> str:
    """`train.loss` and friends: per-epoch training curves."""
    return f"train.{name}"


def test_metric(mode: str, name: str) -> str:
    """`test.<mode>.acc` (per pass, step = pass) and the per-mode summaries `test.<mode>.acc_mean` ..."""
    return f"test.{mode}.{name}"


# The sweep's parent run: per condition and mode, the spread of per-run mean accuracy across trained models.
SUMMARY_PREFIX = "summary."
SEED_STATS = ("acc_mean", "acc_std", "acc_ci_low", "acc_ci_high", "runs")


def condition_key(model: str, deterministic: bool, variant: str = "") -> str:
    """A condition as MLflow names allow it (no spaces, brackets or '='): `hybridsn`, `hybridsn-nondet`,
    `hybridsn-split-spatial`."""
    key = model if deterministic else f"{model}-nondet"
    return f"{key}-{variant.replace('=', '-').replace(', ', '-')}" if variant else key


def summary_metric(condition: str, mode: str, stat: str) -> str:
    """`summary.hybridsn.eval.acc_mean` and friends, on a sweep's parent run."""
    return f"{SUMMARY_PREFIX}{condition}.{mode}.{stat}"


# -- dataset inputs --------------------------------------------------------------------------------------
# Each run logs its data as an MLflow dataset input named after the dataset (`indian_pines`); its digest
# is the start of the loaded data's fingerprint (MLflow keeps digests short), its profile the settings.
DATASET_CONTEXT = "train+test"
DIGEST_LENGTH = 12


def dataset_digest(fingerprint: str) -> str:
    """The digest MLflow shows for a dataset: the first hex digits of its sha256 fingerprint."""
    return fingerprint[:DIGEST_LENGTH]


# -- artifacts -------------------------------------------------------------------------------------------
ARTIFACT_PREDICTIONS = "predictions.npz"
ARTIFACT_CONFIG = "config.json"
ARTIFACT_ENVIRONMENT = "environment.json"
ARTIFACT_STUDY = "study.toml"
ARTIFACT_PLAN = "plan.json"
ARTIFACT_REPORT = "report"  # the folder `seedvar report` logs to the latest sweep run


def tag_filter(tag: str, value: str) -> str:
    """An MLflow search filter on one tag (backquoted: seedvar's tag names contain dots)."""
    return f"tags.`{tag}` = '{value}'"


def condition_name(model: str, deterministic: bool, variant: str = "") -> str:
    """How summaries and reports name a model trained with or without deterministic kernels, on one
    variant of the dataset options: `hybridsn`, `hybridsn (nondet)`, `hybridsn (split=spatial)`."""
    extras = ([] if deterministic else ["nondet"]) + ([variant] if variant else [])
    return f"{model} ({', '.join(extras)})" if extras else model


# -- what a run computes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpochStats:
    """One training epoch, as logged under TRAIN_METRICS."""

    epoch: int
    loss: float
    acc: float
    seconds: float
    samples_per_s: float
    lr: float

    def metrics(self) -> list[tuple[str, float, int]]:
        return [(train_metric(k), float(getattr(self, k)), self.epoch) for k in TRAIN_METRICS]


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


@dataclass(frozen=True)
class PassSummary:
    """One trained model in one test mode: its passes' accuracy (fractions) and flip rate.

    Logged as `test.<mode>.<field>`; the sweep's table, its progress lines and the report all start
    from it, so "mean ± std over passes" is defined here only.
    """

    passes: int
    acc_mean: float
    acc_std: float
    acc_min: float
    acc_max: float
    flip_rate: float

    FIELDS = ("passes", "acc_mean", "acc_std", "acc_min", "acc_max", "flip_rate")

    @classmethod
    def of(cls, preds: np.ndarray, labels: np.ndarray) -> PassSummary:
        acc = pass_accuracy(preds, labels)
        k = len(acc)
        return cls(
            passes=k,
            acc_mean=float(acc.mean()),
            acc_std=float(acc.std(ddof=1)) if k > 1 else 0.0,
            acc_min=float(acc.min()),
            acc_max=float(acc.max()),
            flip_rate=flip_rate(preds) if k > 1 else 0.0,
        )

    def metrics(self, mode: str) -> list[tuple[str, float, int]]:
        return [(test_metric(mode, f), float(getattr(self, f)), 0) for f in self.FIELDS]

    @classmethod
    def from_metrics(cls, mode: str, metrics: Mapping[str, float]) -> PassSummary | None:
        """Read back from a run's latest metrics; None when the run has no such mode."""
        keys = [test_metric(mode, f) for f in cls.FIELDS]
        if not all(k in metrics for k in keys):
            return None
        values = [metrics[k] for k in keys]
        return cls(int(values[0]), *map(float, values[1:]))

    def line(self) -> str:
        """`96.16±0.09` in points: the form of a run's result line."""
        std = f"±{100 * self.acc_std:.2f}" if self.passes > 1 and self.acc_std > 0 else ""
        return f"{100 * self.acc_mean:.2f}{std}"


# A run's description in the MLflow runs table: what the lab compared. The table shows 50 characters.
DESCRIPTION_MODES = ("eval", "train")


def describe(summaries: Mapping[str, PassSummary], modes: Sequence[str] | None = None) -> str:
    """A run's accuracy in the given modes (default all; those it has, else all it has) in one line,
    `eval 96.61, train 96.13±0.10`: its result line, and its description in the runs table."""
    chosen = [m for m in (modes or summaries) if m in summaries] or list(summaries)
    return ", ".join(f"{mode} {summaries[mode].line()}" for mode in chosen)


@dataclass(frozen=True)
class SeedSpread:
    """One condition and mode across trained models: mean, std and t-based 95% CI of the per-run mean
    accuracy (fractions, like the runs' `test.<mode>.acc_mean`): the spread across seeds."""

    runs: int
    acc_mean: float
    acc_std: float | None  # None below two runs: no spread to speak of
    acc_ci_low: float | None
    acc_ci_high: float | None

    @classmethod
    def of(cls, run_means: Sequence[float]) -> SeedSpread:
        from scipy import stats  # lazily: the schema is imported where scipy is not needed

        x = np.asarray(run_means, dtype=float)
        if len(x) < 2:
            return cls(len(x), float(x.mean()), None, None, None)
        std = float(x.std(ddof=1))
        if std == 0:  # identical runs: the interval is the point (scipy would give nan)
            low = high = float(x.mean())
        else:
            low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=std / np.sqrt(len(x)))
        return cls(len(x), float(x.mean()), std, float(low), float(high))

    def metrics(self, condition: str, mode: str) -> list[tuple[str, float, int]]:
        return [
            (summary_metric(condition, mode, stat), float(getattr(self, stat)), 0)
            for stat in SEED_STATS
            if getattr(self, stat) is not None
        ]


@dataclass(frozen=True)
class PooledSummary:
    """Every pass of several trained models in one mode, in points: what the summary tables show."""

    runs: int
    passes: int
    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of_passes(cls, per_run: Sequence[np.ndarray]) -> PooledSummary:
        """From each run's per-pass accuracies in points (the report has them all)."""
        every = np.concatenate(per_run)
        return cls(
            runs=len(per_run),
            passes=len(every),
            mean=float(every.mean()),
            std=float(every.std(ddof=1)) if len(every) > 1 else 0.0,
            min=float(every.min()),
            max=float(every.max()),
        )


def pool(summaries: Sequence[PassSummary]) -> PooledSummary:
    """Mean and std over every pass of every run, from each run's summary (no per-pass values needed):
    the within-run spread plus the spread of run means."""
    n = np.array([s.passes for s in summaries], dtype=float)
    mean = np.array([s.acc_mean for s in summaries])
    std = np.array([s.acc_std for s in summaries])
    total = n.sum()
    grand = (n * mean).sum() / total
    ss = ((n - 1) * std**2).sum() + (n * (mean - grand) ** 2).sum()
    return PooledSummary(
        runs=len(summaries),
        passes=int(total),
        mean=100 * grand,
        std=100 * np.sqrt(ss / (total - 1)) if total > 1 else 0.0,
        min=100 * min(s.acc_min for s in summaries),
        max=100 * max(s.acc_max for s in summaries),
    )


def pass_accuracy(preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy (fraction) of each pass of (K, N) predictions."""
    return (preds == labels[None, :]).mean(axis=1)


@dataclass
class Predictions:
    """Every pass's predicted classes of one trained model, with what is needed to read them: the file
    `predictions.npz` (one small integer array per mode) that flip rates, churn and maps come from."""

    labels: np.ndarray  # (N,) true class of each test sample
    passes: dict[str, np.ndarray]  # mode -> (K, N) predicted classes
    pass_seeds: dict[str, np.ndarray]  # mode -> (K,) the seed of each pass's dropout stream
    ids: np.ndarray  # (N,) stable id of each test sample in its dataset
    class_names: list[str]
    coords: np.ndarray | None = None  # (N, 2) pixel row, col (hyperspectral)
    gt: np.ndarray | None = None  # (H, W) ground truth, -1 unlabelled (hyperspectral)
    train_ids: np.ndarray | None = None  # ids of the training samples, where the dataset knows them

    @property
    def modes(self) -> list[str]:
        return [m for m in MODES if m in self.passes]

    def accuracy(self, mode: str) -> np.ndarray:
        """Per-pass accuracy in percentage points."""
        return 100 * pass_accuracy(self.passes[mode], self.labels)

    def summary(self, mode: str) -> PassSummary:
        return PassSummary.of(self.passes[mode], self.labels)

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"labels": self.labels.astype(np.int16)}
        for mode, preds in self.passes.items():
            arrays[mode] = preds
            arrays[f"{mode}_seeds"] = np.asarray(self.pass_seeds[mode], dtype=np.uint32)
        arrays["ids"] = np.asarray(self.ids, np.int64)
        if self.coords is not None:
            arrays["coords"] = np.asarray(self.coords, dtype=np.int32)
        if self.gt is not None:
            arrays["gt"] = np.asarray(self.gt, dtype=np.int16)
        if self.train_ids is not None:
            arrays["train_ids"] = np.asarray(self.train_ids, np.int64)
        arrays["class_names"] = np.array(self.class_names)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> Predictions:
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
        modes = [m for m in MODES if m in a]
        return cls(
            labels=a["labels"],
            passes={m: a[m] for m in modes},
            pass_seeds={m: a[f"{m}_seeds"] for m in modes},
            ids=a["ids"],
            class_names=[str(c) for c in a["class_names"]],
            coords=a.get("coords"),
            gt=a.get("gt"),
            train_ids=a.get("train_ids"),
        )


@dataclass
class ModeResult:
    """One test mode of one trained model: per-pass metrics (acc, and aa/kappa/class_acc for scenes)."""

    metrics: dict[str, np.ndarray]  # name -> (K,) values, or (K, C) for class_acc
    seconds: float
    fused: bool | None = None  # stochastic modes: trunk once per batch (True) or K full passes (False)
    split: str = ""  # where the model was split for the fused passes, or why it was not


@dataclass
class RunResult:
    """What the engine returns for one run config and the recorder writes."""

    weights_sha256: str
    epochs: list[EpochStats]
    predictions: Predictions
    modes: dict[str, ModeResult]
    data_info: dict[str, int | float | str]
    seconds: float
    summaries: dict[str, PassSummary] = field(init=False)

    def __post_init__(self) -> None:
        self.summaries = {m: self.predictions.summary(m) for m in self.predictions.modes}

    def test_params(self) -> dict[str, str]:
        """How the stochastic modes were computed: PARAM_TEST_FUSED and PARAM_TEST_SPLIT."""
        stochastic = {m: r for m, r in self.modes.items() if r.fused is not None}
        if not stochastic:
            return {}
        splits = {r.split for r in stochastic.values()}
        split = (
            splits.pop() if len(splits) == 1 else "; ".join(f"{m}: {r.split}" for m, r in stochastic.items())
        )
        return {
            PARAM_TEST_FUSED: str(all(r.fused for r in stochastic.values())).lower(),
            PARAM_TEST_SPLIT: split[:500],
        }

    def test_metrics(self) -> list[tuple[str, float, int]]:
        """Per-pass metrics (step = pass) and the per-mode summaries, as (name, value, step)."""
        out: list[tuple[str, float, int]] = []
        for mode, result in self.modes.items():
            for name, values in result.metrics.items():
                if values.ndim == 2:  # per-class values: class_acc.<c>
                    out += [
                        (test_metric(mode, f"{name}.{c}"), float(v), p)
                        for p, row in enumerate(values)
                        for c, v in enumerate(row)
                    ]
                else:
                    out += [(test_metric(mode, name), float(v), p) for p, v in enumerate(values)]
            out += self.summaries[mode].metrics(mode)
            out.append((test_metric(mode, "seconds"), result.seconds, 0))
        return out
