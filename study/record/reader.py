"""The one run reader: a stored MLflow run becomes one typed view, its tags parsed here and only here.

The sweep's status and summary table, the claims, the API's `runs()` and the report's loader all read
runs through `StoredRun`, so a missing tag means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from seedvar.record import schema as s
from seedvar.results import MODES, REFERENCE, Condition, PassSummary, Status, points
from seedvar.stats.interval import resolution_of
from seedvar.stats.samples import Model

if TYPE_CHECKING:  # MLflow loads with the store that is read (a CSV's report needs none)
    from mlflow.entities import Run

    from seedvar.record.store import Store


@dataclass
class StoredRun:
    """One run as the store holds it: identity, status, what it trained, and its params and metrics."""

    run_id: str
    name: str
    status: str  # RUNNING | FINISHED | FAILED | KILLED | SCHEDULED
    model: str
    deterministic: bool
    varied: str
    replicate: int
    config_hash: str
    kind: str = s.KIND_RUN  # KIND_RUN (a trained model) | KIND_SWEEP (a sweep's parent run) | ""
    failure: str = ""
    variant: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start_time: int = 0  # ms since the epoch
    end_time: int = 0  # ms since the epoch; 0 while it runs
    artifact_uri: str = ""  # where its artifacts are (read without looking the run up again)

    @classmethod
    def of(cls, run: Run) -> StoredRun:
        """Tags parsed once, one default each: a run without seedvar's tags reads as a deterministic
        `all`-sources replicate 0 of the model named by its params."""
        tags, info = run.data.tags, run.info
        return cls(
            run_id=info.run_id,
            name=info.run_name or info.run_id,
            status=info.status,
            model=tags.get(s.TAG_MODEL, run.data.params.get(s.PARAM_MODEL, "?")),
            deterministic=tags.get(s.TAG_DETERMINISTIC, "true") == "true",
            varied=tags.get(s.TAG_VARIED, REFERENCE),
            replicate=int(tags.get(s.TAG_REPLICATE, "0")),
            config_hash=tags.get(s.TAG_CONFIG_HASH, info.run_id),
            kind=tags.get(s.TAG_KIND, ""),
            failure=tags.get(s.TAG_FAILURE, ""),
            variant=tags.get(s.TAG_VARIANT, ""),
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            tags=dict(tags),
            start_time=info.start_time or 0,
            end_time=info.end_time or 0,
            artifact_uri=info.artifact_uri or "",
        )

    @property
    def condition(self) -> Condition:
        """The model, determinism and dataset variant it was trained under: what the tables group by."""
        return Condition(self.model, self.deterministic, self.variant)

    @property
    def test_samples(self) -> int | None:
        """How many test samples it was tested on (its data's `n_test`), when it says."""
        try:
            return int(self.params.get(f"{s.PARAM_DATA_PREFIX}n_test") or self.params[s.PARAM_TEST_SIZE])
        except (KeyError, ValueError):
            return None

    @property
    def resolution(self) -> float:
        """The grid its accuracy lies on, in points: 100 / test samples (0 when unknown)."""
        return resolution_of([self.test_samples or 0])

    @property
    def finished(self) -> bool:
        return self.status == Status.FINISHED

    @property
    def heartbeat(self) -> float:
        """Seconds since the epoch of the run's last heartbeat (its start when it has none yet)."""
        try:
            return float(self.tags[s.TAG_HEARTBEAT])
        except (KeyError, ValueError):
            return self.start_time / 1000

    @property
    def summaries(self) -> dict[str, PassSummary]:
        """Each test mode's logged summary over passes (modes the run has, in MODES order)."""
        found = {m: s.summary_from_metrics(m, self.metrics) for m in MODES}
        return {m: v for m, v in found.items() if v is not None}

    @property
    def label(self) -> str:
        """Its condition's name, as tables and sentences write it: what its samples are grouped by."""
        return self.condition.name

    @property
    def modes(self) -> list[str]:
        """The test modes it logged a summary of."""
        return list(self.summaries)

    def sample(self, mode: str) -> Model:
        """Its sample in one mode (seedvar.stats.samples), from its logged summary, in points."""
        summary = self.summaries[mode]
        return Model(
            self.name,
            self.run_id,
            mean=points(summary.acc_mean),
            std=points(summary.acc_std),
            min=points(summary.acc_min),
            max=points(summary.acc_max),
            n_passes=summary.passes,
            step=self.resolution,
            flip_rate=points(summary.flip_rate),
        )


def read_runs(store: Store, experiment_id: str, filter_string: str = "") -> list[StoredRun]:
    """Every run of an experiment matching an MLflow filter, every page, as typed views."""
    return [StoredRun.of(r) for r in store.search(experiment_id, filter_string)]


def get_run(store: Store, run_id: str) -> StoredRun:
    """One run by id."""
    return StoredRun.of(store.get_run(run_id))


def child_runs(store: Store, experiment_id: str, config_hash: str | None = None) -> list[StoredRun]:
    """The trained-model runs of an experiment, or of one config when given."""
    if config_hash is not None:
        return read_runs(store, experiment_id, s.tag_filter(s.TAG_CONFIG_HASH, config_hash))
    return read_runs(store, experiment_id, s.tag_filter(s.TAG_KIND, s.KIND_RUN))


def latest_finished(runs: list[StoredRun]) -> dict[str, StoredRun]:
    """Per config hash, its latest FINISHED run (a config trained twice counts once)."""
    latest: dict[str, StoredRun] = {}
    for run in sorted(runs, key=lambda r: r.start_time):
        if run.finished and run.kind != s.KIND_SWEEP:
            latest[run.config_hash] = run
    return latest


R = TypeVar("R", bound=StoredRun)


def reference_runs(runs: list[R]) -> list[R]:
    """Per condition, its runs with every source varied (`all`), or all its runs when it has none.

    In a one-source-at-a-time study only the `all` reference runs are draws of ordinary seeds: every
    per-condition statistic (spread, interval, components, test noise, power, a two-stage decision)
    comes from them. The one place that chooses them.
    """
    with_all = {r.condition for r in runs if r.varied == REFERENCE}
    return [r for r in runs if r.varied == REFERENCE or r.condition not in with_all]
