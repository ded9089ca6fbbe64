"""Step 1 of the report: read a study's runs back from MLflow, all of it, once, up front.

Everything after this step works on the plain data returned here, so the analysis can be tested on
synthetic runs without MLflow, and a report can be made on any machine that reaches the store.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from seedvar.errors import UserError
from seedvar.record import schema as s
from seedvar.record.bulk import read_metric
from seedvar.record.cache import RunCache, folder_for
from seedvar.record.reader import StoredRun, latest_finished, read_runs
from seedvar.results import REFERENCE, Predictions, Status
from seedvar.stats.interval import resolution_of
from seedvar.stats.samples import Model
from seedvar.stats.twostage import Target

if TYPE_CHECKING:  # MLflow loads with the store that is read (a CSV's report needs none)
    from seedvar.record.store import Store

CURVES = ("loss", "acc")  # the training curves the report draws


@dataclass
class LoadedRun(StoredRun):
    """One child run as read back from MLflow, with its predictions and training curves when finished."""

    predictions: Predictions | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # loss/acc: (epoch, value)
    _accuracy: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def of_stored(cls, run: StoredRun) -> LoadedRun:
        return cls(**{f.name: getattr(run, f.name) for f in fields(StoredRun)})

    @property
    def modes(self) -> list[str]:
        """The modes its predictions hold (none while it has none)."""
        return self.predictions.modes if self.predictions is not None else []

    @property
    def preds(self) -> Predictions:
        """The predictions of a finished run (an unfinished one has none)."""
        if self.predictions is None:
            raise ValueError(f"run {self.name} has no predictions (status {self.status})")
        return self.predictions

    def accuracy(self, mode: str) -> np.ndarray:
        """Per-pass accuracy in percentage points, recomputed from the logged predictions (once)."""
        if mode not in self._accuracy:
            self._accuracy[mode] = self.preds.accuracy(mode)
        return self._accuracy[mode]

    def sample(self, mode: str) -> Model:
        """Its sample in one mode (seedvar.stats.samples): every pass's accuracy from its predictions."""
        step = resolution_of([len(self.preds.labels)])
        return Model.of_passes(self.name, self.run_id, self.accuracy(mode), step=step)


@dataclass
class StudyRuns:
    """A study's child runs (finished ones first: the latest FINISHED per config) and its sweep count."""

    experiment: str
    runs: list[LoadedRun]
    sweeps: int
    target: Target | None = None  # a two-stage study's target, as its sweeps recorded it
    read: int = 0  # finished runs whose predictions and curves came from the store (the rest: the cache)
    claims: tuple[tuple[str, float], ...] = ()  # the spec's published numbers (its `claims` table)

    @property
    def finished(self) -> list[LoadedRun]:
        return [r for r in self.runs if r.status == Status.FINISHED]


def load_study(store: Store, experiment: str, *, cache: bool = True, by: tuple[str, ...] = ()) -> StudyRuns:
    """Every child run of the experiment, with predictions and curves; a one-line error when there is
    no such experiment or no finished run. With `cache`, what was read of a finished run before is taken
    from the local run cache, so only new or changed runs are read from the store."""
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
        elif r.kind == s.KIND_TESTED:  # trained elsewhere, tested by seedvar.log_test_modes
            children.append(tested_run(r, by))
    latest = latest_finished(children)
    if not children and sweeps == 0:
        foreign_runs = read_metric(store, exp_id, "")
        if foreign_runs.runs:
            names = ", ".join(sorted(foreign_runs.metric_names)) or "none"
            raise UserError(
                f"experiment {experiment!r} holds {len(foreign_runs.runs)} runs that seedvar did not train: name "
                f"the metric to report with --metric (its runs log: {names}), and its conditions with --by"
            )
    if not latest:
        states: dict[str, int] = {}
        for r in children:
            states[r.status] = states.get(r.status, 0) + 1
        detail = ", ".join(f"{n} {st}" for st, n in states.items()) or "no runs at all"
        raise UserError(
            f"experiment {experiment!r} has no finished runs yet ({detail}); run or resume `seedvar sweep`"
        )
    read = _fill(store, list(latest.values()), RunCache(folder_for(store, exp_id) if cache else None))
    finished = sorted(
        latest.values(),
        key=lambda r: (r.model, not r.deterministic, r.variant, r.varied != REFERENCE, r.varied, r.replicate),
    )
    unfinished = [r for r in children if r.status != Status.FINISHED and r.config_hash not in latest]
    tags = store.experiment_tags(exp_id)
    target = Target.from_json(tags[s.TAG_TARGET]) if tags.get(s.TAG_TARGET) else None
    claims = tuple((str(k), float(v)) for k, v in json.loads(tags.get(s.TAG_CLAIMS) or "{}").items())
    return StudyRuns(experiment, finished + unfinished, sweeps, target, read, claims)


def tested_run(run: StoredRun, by: tuple[str, ...]) -> LoadedRun:
    """A run seedvar tested but did not train, as one of a study's: its condition named by the `by`
    params (`dropout=0.5`), else by its `model` param; its own run id is its config, so each is a seed."""
    loaded = LoadedRun.of_stored(run)
    missing = [p for p in by if p not in run.params]
    if missing:
        raise UserError(
            f"--by {','.join(missing)}: no such param on tested run {run.name} "
            f"(it has: {', '.join(sorted(run.params)) or 'none'})"
        )
    if by:
        loaded.model = ",".join(f"{p}={run.params.get(p, '?')}" for p in by)
    elif s.PARAM_MODEL not in run.params:
        loaded.model = "tested"
    return loaded


def _fill(store: Store, runs: list[LoadedRun], cache: RunCache) -> int:
    """Predictions and training curves of finished runs: from the cache where it holds them, the rest
    from the store in bulk (artifacts read in parallel, each curve in a few bulk requests). Returns how
    many runs were read from the store."""
    found: dict[str, dict[str, np.ndarray]] = {}
    todo = []
    for run in runs:
        entry = cache.get(run)
        if entry is None:
            todo.append(run)
        else:
            found[run.run_id] = entry
    blobs = store.read_artifacts({r.run_id: r.artifact_uri for r in todo}, s.ARTIFACT_PREDICTIONS)
    curves = {c: store.metric_histories([r.run_id for r in todo], s.train_metric(c)) for c in CURVES}
    for run in todo:
        entry = {PREDICTIONS: np.frombuffer(blobs[run.run_id], dtype=np.uint8)}
        for c in CURVES:
            entry[c] = np.array(curves[c][run.run_id], dtype=float).reshape(-1, 2)
        cache.put(run, entry)
        found[run.run_id] = entry
    cache.prune(found)

    def decode(run: LoadedRun) -> None:
        entry = found[run.run_id]
        run.predictions = compact(Predictions.load(io.BytesIO(entry[PREDICTIONS].tobytes())))
        run.curves = {c: [(int(step), float(v)) for step, v in entry[c]] for c in CURVES}

    with ThreadPoolExecutor(DECODE_THREADS) as pool:  # zlib lets go of the GIL: both cores decompress
        list(pool.map(decode, runs))
    return len(todo)


PREDICTIONS = "predictions"  # a cache entry's key for the predictions file's bytes
DECODE_THREADS = 2


def compact(p: Predictions) -> Predictions:
    """Predicted classes in the smallest integer type that holds them: a report holds every pass of every
    run in memory, and int8 halves what the file's int16 takes for up to 127 classes."""
    small = all(a.size == 0 or (a.min() >= 0 and a.max() < 128) for a in p.passes.values())
    if small:
        p.passes = {m: a.astype(np.int8) for m, a in p.passes.items()}
    return p
