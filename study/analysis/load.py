"""Step 1 of the report: read a study's runs back from MLflow, all of it, once, up front.

Everything after this step works on the plain data returned here, so the analysis can be tested on
synthetic runs without MLflow, and a report can be made on any machine that reaches the store.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from seedvar.errors import UserError
from seedvar.record import schema as s
from seedvar.record.reader import StoredRun, latest_finished, read_runs
from seedvar.record.store import Store
from seedvar.results import Predictions
from seedvar.twostage import Target

CURVES = ("loss", "acc")  # the training curves the report draws


@dataclass
class LoadedRun(StoredRun):
    """One child run as read back from MLflow, with its predictions and training curves when finished."""

    predictions: Predictions | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # loss/acc: (epoch, value)

    @classmethod
    def of_stored(cls, run: StoredRun) -> LoadedRun:
        return cls(**{f.name: getattr(run, f.name) for f in fields(StoredRun)})

    @property
    def modes(self) -> list[str]:
        return self.predictions.modes if self.predictions is not None else []

    @property
    def preds(self) -> Predictions:
        """The predictions of a finished run (an unfinished one has none)."""
        if self.predictions is None:
            raise ValueError(f"run {self.name} has no predictions (status {self.status})")
        return self.predictions

    def accuracy(self, mode: str) -> np.ndarray:
        """Per-pass accuracy in percentage points, recomputed from the logged predictions."""
        return self.preds.accuracy(mode)


@dataclass
class StudyRuns:
    """A study's child runs (finished ones first: the latest FINISHED per config) and its sweep count."""

    experiment: str
    runs: list[LoadedRun]
    sweeps: int
    target: Target | None = None  # a two-stage study's target, as its sweeps recorded it

    @property
    def finished(self) -> list[LoadedRun]:
        return [r for r in self.runs if r.status == "FINISHED"]


def load_study(store: Store, experiment: str) -> StudyRuns:
    """Every child run of the experiment, with predictions and curves; a one-line error when there is
    no such experiment or no finished run."""
    exp_id = store.experiment_id(experiment, create=False)
    if exp_id is None:
        known = ", ".join(store.experiment_names()) or "none yet"
        raise UserError(
            f"no experiment named {experiment!r} in {store.uri} (known: {known}); run `seedvar sweep` first"
        )
    children, sweeps = [], 0
    for r in read_runs(store, exp_id):
        if r.kind == s.KIND_SWEEP:
            sweeps += 1
        elif r.kind == s.KIND_RUN:
            children.append(LoadedRun.of_stored(r))
    latest = latest_finished(children)
    if not latest:
        states: dict[str, int] = {}
        for r in children:
            states[r.status] = states.get(r.status, 0) + 1
        detail = ", ".join(f"{n} {st}" for st, n in states.items()) or "no runs at all"
        raise UserError(
            f"experiment {experiment!r} has no finished runs yet ({detail}); run or resume `seedvar sweep`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        for run in latest.values():
            path = store.download(run.run_id, s.ARTIFACT_PREDICTIONS, Path(tmp) / run.run_id)
            run.predictions = Predictions.load(path)
            run.curves = {c: store.metric_history(run.run_id, s.train_metric(c)) for c in CURVES}
    finished = sorted(
        latest.values(),
        key=lambda r: (r.model, not r.deterministic, r.variant, r.varied != "all", r.varied, r.replicate),
    )
    unfinished = [r for r in children if r.status != "FINISHED" and r.config_hash not in latest]
    tag = store.experiment_tags(exp_id).get(s.TAG_TARGET)
    return StudyRuns(experiment, finished + unfinished, sweeps, Target.from_json(tag) if tag else None)
