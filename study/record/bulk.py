"""Reading one metric of every run of an experiment in bulk: the latest value of that metric, the params,
status, name and parent of every run, and nothing else.

MLflow's `search_runs` builds every run whole (all its metrics, params, tags, inputs), which is what makes
it take minutes at tens of thousands of runs (mlflow#2730). A report of a metric needs one value per run:
from a database store (sqlite, PostgreSQL) three queries through MLflow's own tables and models read
exactly that; a tracking server has no narrower endpoint, so its pages of `search_runs` are read, in
SLICES searches at once over disjoint ranges of start time (the server builds one page while this
process reads another), and only those fields kept.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from seedvar.record import schema as s

if TYPE_CHECKING:  # MLflow and SQLAlchemy load when a store is read: a CSV's report never needs them
    from mlflow.entities import Run

    from seedvar.record.store import Store

SLICES = 4  # searches at once through a tracking server (see the module's docstring)


@dataclass
class MetricRun:
    """One run as a metric report reads it."""

    run_id: str
    name: str
    status: str
    parent_id: str = ""
    value: float | None = None  # the metric's latest value; None when the run never logged it
    step: int = 0  # the step of that value (> 0: the metric has a history to draw; -1: not known)
    params: dict[str, str] = field(default_factory=dict)
    seedvar: bool = False  # a run seedvar wrote (it carries seedvar's kind tag)


@dataclass
class MetricRead:
    """What an experiment holds for a metric report: its runs, and the metric names any run logged."""

    runs: list[MetricRun]
    metric_names: set[str]


def read_metric(store: Store, experiment_id: str, key: str) -> MetricRead:
    """Every active run of an experiment with the latest value of metric `key` (bulk; see above)."""
    backend = store.backend
    if hasattr(backend, "ManagedSessionMaker"):
        return store.call(_read_database, backend, experiment_id, key)
    return _read_pages(store, experiment_id, key)


def _read_database(backend: object, experiment_id: str, key: str) -> MetricRead:
    from mlflow.entities import LifecycleStage
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlParam, SqlRun, SqlTag
    from sqlalchemy import select

    active = select(SqlRun.run_uuid).where(
        SqlRun.experiment_id == int(experiment_id), SqlRun.lifecycle_stage == LifecycleStage.ACTIVE
    )
    with backend.ManagedSessionMaker() as session:
        runs = {
            run_id: MetricRun(run_id, name or run_id, status)
            for run_id, name, status in session.query(SqlRun.run_uuid, SqlRun.name, SqlRun.status).filter(
                SqlRun.run_uuid.in_(active)
            )
        }
        names: set[str] = set()
        latest = session.query(
            SqlLatestMetric.run_uuid, SqlLatestMetric.key, SqlLatestMetric.value, SqlLatestMetric.step
        ).filter(SqlLatestMetric.run_uuid.in_(active))
        for run_id, metric, value, step in latest:
            names.add(metric)
            if metric == key and run_id in runs:
                runs[run_id].value, runs[run_id].step = float(value), int(step)
        for run_id, name, value in session.query(SqlParam.run_uuid, SqlParam.key, SqlParam.value).filter(
            SqlParam.run_uuid.in_(active)
        ):
            runs[run_id].params[name] = value
        for run_id, name, value in session.query(SqlTag.run_uuid, SqlTag.key, SqlTag.value).filter(
            SqlTag.run_uuid.in_(active), SqlTag.key.in_([s.TAG_PARENT, s.TAG_KIND])
        ):
            if name == s.TAG_PARENT:
                runs[run_id].parent_id = value
            else:
                runs[run_id].seedvar = True
    return MetricRead(list(runs.values()), names)


def _read_pages(store: Store, experiment_id: str, key: str) -> MetricRead:
    runs, names = [], set()
    for run in _search_sliced(store, experiment_id):
        metrics = run.data.metrics
        names |= set(metrics)
        tags = run.data.tags
        runs.append(
            MetricRun(
                run.info.run_id,
                run.info.run_name or run.info.run_id,
                run.info.status,
                tags.get(s.TAG_PARENT, ""),
                float(metrics[key]) if key in metrics else None,
                -1,  # a server's search does not say at which step: -1, unknown
                dict(run.data.params),
                s.TAG_KIND in tags,
            )
        )
    return MetricRead(runs, names)


def _search_sliced(store: Store, experiment_id: str) -> list[Run]:
    """Every active run, newest first as one search gives them, read as SLICES searches at once over
    start-time ranges between the oldest and the newest run. The first range is open below and the last
    open above, so a run started while this reads is found or not as in one search; every run a tracking
    server holds has a start time (its REST API sets one), so no run falls outside the ranges."""
    oldest = store.search(experiment_id, order_by="attributes.start_time ASC", limit=1)
    if not oldest:
        return []
    newest = store.search(experiment_id, order_by="attributes.start_time DESC", limit=1)
    lo, hi = oldest[0].info.start_time or 0, (newest or oldest)[0].info.start_time or 0
    cuts = sorted({lo + (hi - lo) * i // SLICES for i in range(1, SLICES)} - {lo})
    bounds = [None, *cuts, None]
    filters = [
        " AND ".join(
            ([f"attributes.start_time >= {a}"] if a is not None else [])
            + ([f"attributes.start_time < {b}"] if b is not None else [])
        )
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    with ThreadPoolExecutor(len(filters)) as pool:
        parts = list(pool.map(lambda f: store.search(experiment_id, f), filters))
    return [run for part in reversed(parts) for run in part]
