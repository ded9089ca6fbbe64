"""One MLflow run per condition (kind `condition`): its spread across seeds per mode, and its trained
models' runs as its child runs, so MLflow's runs table lists conditions as rows and one click leads to
the seeds. Each sweep's finish brings them up to date."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from seedvar.record import schema as s
from seedvar.record import view
from seedvar.record.reader import StoredRun, read_runs
from seedvar.record.store import Store
from seedvar.results import Status


def record_conditions(
    store: Store,
    experiment_id: str,
    spreads: Mapping[str, Mapping[str, Mapping[str, float | int | None]]],
    members: Mapping[str, Sequence[StoredRun]],
) -> dict[str, str]:
    """One run per condition (kind `condition`, named by its key), kept up to date: its spread across
    seeds per mode as `seeds.<mode>.<stat>` metrics and a one-line description; the condition's runs
    become its child runs (the sweep that trained each stays in its `seedvar.sweep_run` tag), so the
    MLflow UI lists conditions as rows and one click (the run's page, with its Child runs) leads to the
    seeds. Returns {condition key: run id}."""
    existing = read_runs(store, experiment_id, s.tag_filter(s.TAG_KIND, s.KIND_CONDITION))
    # the earliest run of a condition wins, as in _condition_run, should a race have left two
    found = {r.tags.get(s.TAG_CONDITION, ""): r for r in sorted(existing, key=_seniority, reverse=True)}
    ids = {}
    for key, by_mode in spreads.items():
        run = found.get(key)
        run_id = run.run_id if run is not None else _condition_run(store, experiment_id, key)
        metrics = [
            (s.seed_metric(mode, stat), float(value), 0)
            for mode, values in by_mode.items()
            for stat, value in values.items()
            if value is not None
        ]
        store.log(run_id, metrics, tags={s.TAG_NOTE: view.condition_note(by_mode)})
        if run is None or run.status != Status.FINISHED:
            store.end(run_id, Status.FINISHED)
        for member in members.get(key, []):
            parent = member.tags.get(s.TAG_PARENT, "")
            if parent != run_id or member.tags.get(s.TAG_CONDITION) != key:
                sweep = {s.TAG_SWEEP_RUN: parent} if parent and s.TAG_SWEEP_RUN not in member.tags else {}
                store.log(member.run_id, tags={s.TAG_PARENT: run_id, s.TAG_CONDITION: key, **sweep})
        ids[key] = run_id
    return ids


def _condition_run(store: Store, experiment_id: str, key: str) -> str:
    """A new condition run; when sweeps on several hosts create one at once, the earliest (start time,
    then id) stays and the others are deleted by their own creators, as claims settle (claims.py)."""
    mine = store.start_run(experiment_id, key, {s.TAG_KIND: s.KIND_CONDITION, s.TAG_CONDITION: key})
    rivals = read_runs(
        store,
        experiment_id,
        f"{s.tag_filter(s.TAG_KIND, s.KIND_CONDITION)} and {s.tag_filter(s.TAG_CONDITION, key)}",
    )
    first = min(rivals, key=_seniority)
    if first.run_id != mine:
        store.delete_run(mine)
    return first.run_id


def _seniority(run: StoredRun) -> tuple[int, str]:
    """Which of two condition runs stays: the earlier started, then the smaller id (every host agrees)."""
    return run.start_time, run.run_id
