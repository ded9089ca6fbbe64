"""What a run computes, as plain types: test modes, epoch stats, pass summaries, predictions, the run result.

Below plan, engine, record, the sweep room and analysis alike: numpy only, and no MLflow names (the
record maps these to params, metrics and files in `record/schema.py`), so the report can use them
without torch or MLflow.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from seedvar.stats.flips import flip_rate, pass_accuracy

# The test modes, spelled here only: `eval` (one deterministic pass), `train` (the lab's way: dropout and
# BatchNorm batch statistics active), `mc_dropout` (only dropout active).
EVAL, TRAIN, MC_DROPOUT = "eval", "train", "mc_dropout"
MODES = (EVAL, TRAIN, MC_DROPOUT)
STOCHASTIC_MODES = (TRAIN, MC_DROPOUT)
# The reference of a sources-of-variance study: every source varied together (ordinary seeds); `seeds.vary`
# names it, runs are tagged with it, and each source varied alone is compared with it.
REFERENCE = "all"


class Status:
    """A run's status as MLflow spells it: what a launch returns (RunOutcome.status) and what a stored run
    says. Plain strings, so they compare with MLflow's own."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    SKIPPED = "SKIPPED"  # an outcome only: the run was finished, or is running, elsewhere


FloatOrArray = TypeVar("FloatOrArray", float, np.ndarray)


def points(fraction: FloatOrArray) -> FloatOrArray:
    """A fraction (an accuracy, a share, a flip rate: how results and the store hold them) in points, the
    percent every table, sentence and result line prints. The one place the factor 100 is written."""
    return 100 * fraction


def fraction(points: FloatOrArray) -> FloatOrArray:
    """Points back to a fraction, as the store holds them (a condition run's spread)."""
    return points / 100


@dataclass(frozen=True)
class Condition:
    """What the seeds of a study are compared across: a model, trained with or without deterministic
    kernels, on one variant of the dataset options. A run config carries it, a stored run reads it back."""

    model: str
    deterministic: bool = True
    variant: str = ""  # "split=spatial" when a spec compares values of dataset options

    @property
    def name(self) -> str:
        """How tables and sentences name it: `hybridsn`, `hybridsn (nondet)`, `hybridsn (split=spatial)`."""
        extras = ([] if self.deterministic else ["nondet"]) + ([self.variant] if self.variant else [])
        return f"{self.model} ({', '.join(extras)})" if extras else self.model

    @property
    def key(self) -> str:
        """How MLflow names allow it (no spaces, brackets or '='): `hybridsn`, `hybridsn-nondet`,
        `hybridsn-split-spatial`: a condition run's name and tag."""
        key = self.model if self.deterministic else f"{self.model}-nondet"
        return f"{key}-{self.variant.replace('=', '-').replace(', ', '-')}" if self.variant else key


@dataclass(frozen=True)
class EpochStats:
    """One training epoch: its loss, training accuracy, duration, throughput and learning rate."""

    epoch: int
    loss: float
    acc: float
    seconds: float
    samples_per_s: float
    lr: float

    FIELDS = ("loss", "acc", "seconds", "samples_per_s", "lr")


@dataclass(frozen=True)
class PassSummary:
    """One trained model in one test mode: its passes' accuracy (fractions) and flip rate.

    The sweep's table, its progress lines, the runs' summary metrics and the report all start from it,
    so "mean ± std over passes" is defined here only.
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

    def line(self) -> str:
        """`96.16±0.09` in points: the form of a run's result line."""
        std = f"±{points(self.acc_std):.2f}" if self.passes > 1 and round(points(self.acc_std), 2) > 0 else ""
        return f"{points(self.acc_mean):.2f}{std}"


def describe(summaries: Mapping[str, PassSummary], modes: Sequence[str] | None = None) -> str:
    """A run's accuracy in the given modes (default all; those it has, else all it has) in one line,
    `eval 96.61, train 96.13±0.10`: its result line, and its description in the runs table."""
    chosen = [m for m in (modes or summaries) if m in summaries] or list(summaries)
    return ", ".join(f"{mode} {summaries[mode].line()}" for mode in chosen)


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
        return points(pass_accuracy(self.passes[mode], self.labels))

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
    def load(cls, path: str | Path | io.BytesIO) -> Predictions:
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

    @property
    def fused(self) -> bool | None:
        """Whether every stochastic mode ran its trunk once per batch; None without stochastic modes."""
        stochastic = [r for r in self.modes.values() if r.fused is not None]
        return all(r.fused for r in stochastic) if stochastic else None

    @property
    def split(self) -> str:
        """Where the model was split for the stochastic modes (or why not), one line per distinct answer."""
        stochastic = {m: r for m, r in self.modes.items() if r.fused is not None}
        splits = {r.split for r in stochastic.values()}
        if len(splits) <= 1:
            return next(iter(splits), "")
        return "; ".join(f"{m}: {r.split}" for m, r in stochastic.items())


@dataclass
class RunOutcome:
    """How one run of a sweep ended, as the sweep prints and counts it: status, reason, each mode's summary.
    Picklable: it comes back from worker processes and Ray tasks."""

    config_hash: str
    run_name: str
    status: str  # a Status: FINISHED | FAILED | KILLED | SKIPPED
    run_id: str | None = None
    reason: str = ""
    seconds: float = 0.0
    summaries: dict[str, PassSummary] = field(default_factory=dict)
    weights_sha256: str = ""
    node: str = ""  # where it ran, when the executor knows (a Ray node id)


Event = Callable[[str, dict[str, Any]], None]  # a run's progress: (kind, payload), kind one of Events


class Events:
    """The kinds of a run's progress events, in the order a job emits them: BEGIN first and END last
    whatever happens between (executors count the runs in flight by them), START with the epoch it
    starts from, one EPOCH per epoch, TESTING before the test passes."""

    BEGIN = "begin"
    START = "start"
    EPOCH = "epoch"
    TESTING = "testing"
    END = "end"
