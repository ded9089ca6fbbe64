"""Step 1 of the report: read a study's runs back from MLflow, all of it, once, up front.

Everything after this step works on the plain data returned here, so the analysis can be tested on
synthetic runs without MLflow, and a report can be made on any machine that reaches the store.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study.errors import UserError
from study.record import schema as s
from study.record.store import Store

CURVES = ("loss", "acc")  # the training curves the report draws


@dataclass
class LoadedRun:
    """One child run as read back from MLflow, with its predictions and training curves when finished."""

    run_id: str
    name: str
    status: str
    model: str
    deterministic: bool
    varied: str
    replicate: int
    config_hash: str
    failure: str = ""
    variant: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    start_time: int = 0
    predictions: s.Predictions | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # loss/acc: (epoch, value)

    @property
    def condition(self) -> str:
        return s.condition_name(self.model, self.deterministic, self.variant)

    @property
    def modes(self) -> list[str]:
        return self.predictions.modes if self.predictions is not None else []

    @property
    def preds(self) -> s.Predictions:
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
    for r in store.search(exp_id):
        tags = r.data.tags
        if tags.get(s.TAG_KIND) == s.KIND_SWEEP:
            sweeps += 1
        elif tags.get(s.TAG_KIND) == s.KIND_RUN:
            children.append(
                LoadedRun(
                    run_id=r.info.run_id,
                    name=r.info.run_name,
                    status=r.info.status,
                    model=tags.get(s.TAG_MODEL, r.data.params.get(s.PARAM_MODEL, "?")),
                    deterministic=tags.get(s.TAG_DETERMINISTIC, "true") == "true",
                    varied=tags.get(s.TAG_VARIED, "all"),
                    replicate=int(tags.get(s.TAG_REPLICATE, "0")),
                    config_hash=tags.get(s.TAG_CONFIG_HASH, r.info.run_id),
                    failure=tags.get(s.TAG_FAILURE, ""),
                    variant=tags.get(s.TAG_VARIANT, ""),
                    params=dict(r.data.params),
                    metrics=dict(r.data.metrics),
                    start_time=r.info.start_time or 0,
                )
            )
    latest: dict[str, LoadedRun] = {}
    for run in sorted(children, key=lambda r: r.start_time):
        if run.status == "FINISHED":
            latest[run.config_hash] = run
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
            run.predictions = s.Predictions.load(path)
            run.curves = {c: store.metric_history(run.run_id, s.train_metric(c)) for c in CURVES}
    finished = sorted(
        latest.values(),
        key=lambda r: (r.model, not r.deterministic, r.variant, r.varied != "all", r.varied, r.replicate),
    )
    unfinished = [r for r in children if r.status != "FINISHED" and r.config_hash not in latest]
    return StudyRuns(experiment, finished + unfinished, sweeps)
