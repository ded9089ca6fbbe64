"""The MLflow store: where it lives, how runs are created, logged in batches and found again.

Default store: `sqlite:///mlruns/mlflow.db` with artifacts in `mlruns/artifacts` (MLflow 3's file store
refuses `./mlruns`). `--tracking-uri` or `MLFLOW_TRACKING_URI` point anywhere else, e.g. `mlflow server`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import sqlite3
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, Run, RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.tracking.rest_store import RestStore
from mlflow.utils.file_utils import local_file_uri_to_path
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from mlflow.utils.rest_utils import http_request, verify_rest_response

from seedvar.errors import UserError
from seedvar.plan.execution import DEFAULT_URI, ENV_TRACKING_URI, retry_seconds
from seedvar.record import schema as s
from seedvar.record.retry import StoreUnavailable, brief, failure_kind, interrupts_held
from seedvar.results import Status

RACE_RETRIES = 3  # tries after a duplicate-key answer (Store.call)
T = TypeVar("T")


def _quiet() -> None:
    """MLflow configures its loggers on import and announces every table it creates: keep warnings only.
    Its database layer also logs every error it raises, with a traceback ("database is locked" included):
    Store.call retries those or ends with one line, so that log is only noise."""
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def resolve_uri(uri: str | None = None) -> str:
    """The explicit URI, else MLFLOW_TRACKING_URI, else the embedded sqlite store under ./mlruns."""
    return uri or os.environ.get(ENV_TRACKING_URI) or DEFAULT_URI


def local_db(uri: str) -> Path | None:
    """The absolute path of a local sqlite store's file (artifacts and checkpoints live beside it), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :]).expanduser().resolve()


class Store:
    """A thin layer over MlflowClient: retries while a store is busy or a server restarts, batches, one-line
    errors. Local sqlite stores keep checkpoints and claims in files beside them; any other store (a tracking
    server, a database) keeps them in the store itself, so a run can move between hosts."""

    def __init__(
        self, uri: str | None = None, *, create: bool = True, retry_for: float | None = None
    ) -> None:
        self.uri = resolve_uri(uri)
        self.retry_for = retry_seconds(retry_for)
        self.db = local_db(self.uri)
        self.dir = self.db.parent if self.db is not None else None
        if self.db is not None:
            if not create and not self.db.exists():
                raise UserError(
                    f"no MLflow store at {self.db}: run `seedvar sweep` first or pass --tracking-uri"
                )
            try:
                self.db.parent.mkdir(parents=True, exist_ok=True)
                probe = tempfile.NamedTemporaryFile(dir=self.db.parent, prefix=".write-test-")
                probe.close()
            except OSError as exc:
                raise UserError(
                    f"cannot write the MLflow store folder {self.dir} ({exc.strerror}): "
                    "fix its permissions or pass --tracking-uri to use another store"
                ) from None
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # Retries are Store.call's (bounded by retry_for); MLflow's own would multiply them.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
        if self.dir is None:
            self._open()
            return
        # Several sweeps may start on a new store at once: one creates the tables, the others wait.
        with open(self.dir / ".seedvar-init.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._open()
            _enable_wal(self.db)

    @property
    def backend(self) -> Any:
        """MLflow's tracking store behind the client: a database store (SQLAlchemy) or a server's REST client."""
        return self._client._tracking_client.store

    @property
    def remote(self) -> bool:
        """A tracking server (MLflow's REST client): a request cut short holds no lock in it, where a
        database URI's transaction would."""
        return isinstance(self.backend, RestStore)

    @property
    def is_local(self) -> bool:
        """A sqlite file on this machine (only processes here can share it)."""
        return self.db is not None

    def beside(self, kind: str, experiment_id: str) -> Path | None:
        """The folder beside a local store where an experiment keeps files of one kind (`checkpoints`,
        `cache`); None for any other store, whose runs may move between hosts, so nothing they need may
        live on one host's disk. The one place that decides local against remote."""
        return self.dir / kind / experiment_id if self.dir is not None else None

    def _open(self) -> None:
        """First contact: creates or migrates a local store; a broken one becomes a one-line error."""
        _quiet()  # importing mlflow sets its own log levels
        try:
            self._client = MlflowClient(tracking_uri=self.uri)
            # a server that was never reached is a wrong address, not a restart: fail at once
            self.call(self._client.search_experiments, max_results=1, budget=10.0 if self.is_local else 0.0)
        except StoreUnavailable:
            raise UserError(
                f"cannot reach the tracking server {self.uri}: start it (`seedvar server`) or fix --tracking-uri / "
                "MLFLOW_TRACKING_URI"
            ) from None
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"cannot open the MLflow store {self.uri} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}): "
                "point --tracking-uri at a valid store"
            ) from None

    # -- robustness -------------------------------------------------------------------------------
    def call(self, fn: Callable[..., T], *args: Any, budget: float | None = None, **kwargs: Any) -> T:
        """Call the MLflow client; transient failures are retried with backoff for `budget` seconds.

        Transient: sqlite "database is locked", a server that refuses connections while it restarts,
        5xx answers, timeouts. Retrying is safe: a batch is resent with the same timestamps, and MLflow
        keeps one copy of an identical metric value. Other failures become one line (auth) or raise.

        A duplicate key is a race, retried at most RACE_RETRIES times: MLflow reads, then inserts (an
        experiment tag, a dataset of `log_inputs`), so writers on several hosts may insert one row
        together; the loser's second try finds the row and updates or links it instead.
        """
        budget = self.retry_for if budget is None else budget
        deadline = time.monotonic() + budget
        delay = 0.05
        races = 0
        while True:
            try:
                with contextlib.nullcontext() if self.remote else interrupts_held():
                    return fn(*args, **kwargs)
            except UserError:
                raise
            except Exception as exc:  # MLflow wraps sqlite, SQLAlchemy and HTTP errors in several types
                kind = failure_kind(exc)
                if kind == "race" and races < RACE_RETRIES:
                    races += 1
                    time.sleep(0.05 * races * (1 + random.random()))
                    continue
                if kind == "auth":
                    raise UserError(
                        f"the tracking server {self.uri} refused the credentials (HTTP 401/403): set "
                        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to a valid user"
                    ) from None
                if kind in ("other", "race"):
                    raise
                if time.monotonic() + delay > deadline:
                    if kind == "locked":
                        raise StoreUnavailable(
                            f"the sqlite store {self.uri} stayed locked by other writers for {budget:.0f} s: "
                            "for many concurrent sweeps start `seedvar server` and pass its URL with --tracking-uri"
                        ) from None
                    raise StoreUnavailable(
                        f"cannot reach the tracking server {self.uri} ({brief(exc)}; retried for {budget:.0f} s): "
                        "start it or fix --tracking-uri / MLFLOW_TRACKING_URI; rerunning the sweep resumes"
                    ) from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 5.0)

    # -- experiments and runs ----------------------------------------------------------------------
    def experiment_id(self, name: str, *, create: bool = True) -> str | None:
        """The experiment of a study, created when missing: artifacts beside the store, and tagged as a
        model-training experiment so that MLflow's UI opens it on its runs table."""
        exp = self.call(self._client.get_experiment_by_name, name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                raise UserError(
                    f"experiment {name!r} is deleted in {self.uri}: restore it in the MLflow UI or rename the study"
                )
            return exp.experiment_id
        if not create:
            return None
        location = (self.dir / "artifacts").as_uri() if self.dir is not None else None
        try:
            return self.call(
                self._client.create_experiment,
                name,
                artifact_location=location,
                tags={s.TAG_EXPERIMENT_KIND: s.EXPERIMENT_KIND},
            )
        except Exception:  # another sweep created it between our two calls
            exp = self.call(self._client.get_experiment_by_name, name)
            if exp is None:
                raise
            return exp.experiment_id

    def experiment_tags(self, experiment_id: str) -> dict[str, str]:
        return dict(self.call(self._client.get_experiment, experiment_id).tags)

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.call(self._client.set_experiment_tag, experiment_id, key, value)

    def latest_run(self, experiment_id: str, filter_string: str = "") -> Run | None:
        """The most recently started run matching a filter, if any."""
        runs = self.call(
            self._client.search_runs,
            [experiment_id],
            filter_string,
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        return runs[0] if runs else None

    def search(
        self,
        experiment_id: str,
        filter_string: str = "",
        *,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """All runs of an experiment matching a filter (at most `limit`), every page, newest first unless
        `order_by` says otherwise (e.g. "attributes.start_time ASC")."""
        runs, token = [], None
        order = [order_by] if order_by else None
        while True:
            page = self.call(
                self._client.search_runs,
                [experiment_id],
                filter_string,
                max_results=min(1000, limit or 1000),
                order_by=order,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token or (limit is not None and len(runs) >= limit):
                return runs[:limit] if limit is not None else runs

    def start_run(
        self, experiment_id: str, name: str, tags: Mapping[str, str], parent_id: str | None = None
    ) -> str:
        """A new run (a child of `parent_id` when given); returns its id.

        Exactly one run, even when the store made the run but its answer was lost (a connection cut, a
        timeout): each attempt after the first looks for the run by the creation id it carries.
        """
        creation = uuid.uuid4().hex
        tags = {**tags, s.TAG_CREATION: creation}
        if parent_id:
            tags[s.TAG_PARENT] = parent_id
        attempts = 0

        def create() -> Run:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                made = self._client.search_runs(
                    [experiment_id], s.tag_filter(s.TAG_CREATION, creation), max_results=1
                )
                if made:
                    return made[0]
            return self._client.create_run(experiment_id, run_name=name, tags=tags)

        return self.call(create).info.run_id

    def log(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, float, int] | tuple[str, float, int, int]] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        budget: float | None = None,
    ) -> None:
        """One batched call per 1000 metrics (MLflow's limit), instead of one call per value.

        A metric is (name, value, step), stamped now, or (name, value, step, timestamp in ms): a value sent
        again with the timestamp of its first sending is stored once (MLflow keeps one copy of identical
        values), so a batch the store took but could not confirm is never duplicated by its resend.
        """
        now = int(time.time() * 1000)
        ms = [Metric(m[0], float(m[1]), m[3] if len(m) > 3 else now, int(m[2])) for m in metrics]
        ps = [Param(k, str(v)) for k, v in (params or {}).items()]
        ts = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        for i in range(0, max(len(ms), 1), 1000):
            self.call(
                self._client.log_batch,
                run_id,
                metrics=ms[i : i + 1000],
                params=ps[:100] if i == 0 else [],
                tags=ts if i == 0 else [],
                budget=budget,
            )
        for i in range(100, len(ps), 100):  # params are limited to 100 per batch
            self.call(self._client.log_batch, run_id, params=ps[i : i + 100], budget=budget)

    def log_files(self, run_id: str, files: Mapping[str, bytes]) -> None:
        """Write artifacts (path -> bytes) through MLflow's artifact API (to the server's store, if any)."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, blob in files.items():
                (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / name).write_bytes(blob)
            self.call(self._client.log_artifacts, run_id, tmp)

    def log_folder(self, run_id: str, folder: str | Path, artifact_path: str) -> None:
        """Copy a local folder into a run's artifacts under `artifact_path` (a report, for instance)."""
        self.call(self._client.log_artifacts, run_id, str(folder), artifact_path)

    def log_dataset(
        self,
        run_id: str,
        name: str,
        digest: str,
        source: str,
        profile: Mapping[str, Any],
        context: str,
    ) -> None:
        """A run's data as an MLflow dataset input: the runs table's Dataset column and filter show it.

        MLflow keeps one dataset per (name, digest) in an experiment, so the digest must change whenever
        the profile does. `source` is a local path (a file or folder) or a word such as `synthetic`.
        """
        from mlflow.data.sources import CodeDatasetSource, LocalArtifactDatasetSource

        where = (
            LocalArtifactDatasetSource(source)
            if os.path.isabs(source)
            else CodeDatasetSource(tags={"source": source})
        )
        dataset = Dataset(
            name=name,
            digest=digest,
            source_type=where._get_source_type(),
            source=where.to_json(),
            profile=json.dumps(dict(profile), sort_keys=True, default=str),
        )
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)]
        self.call(self._client.log_inputs, run_id, datasets=[DatasetInput(dataset, tags)])

    def download(self, run_id: str, path: str, dst: str | Path) -> Path:
        """Fetch one artifact of a run to a local folder (through MLflow, wherever it is stored).

        Straight from the run's artifact repository: MlflowClient.download_artifacts reports every failure
        as a missing path, so a connection cut mid-download would read as "no such artifact" instead of
        being retried.
        """
        Path(dst).mkdir(parents=True, exist_ok=True)
        repo = get_artifact_repository(self.get_run(run_id).info.artifact_uri, tracking_uri=self.uri)
        return Path(self.call(repo.download_artifacts, path, str(dst)))

    def read_artifacts(self, runs: Mapping[str, str], path: str) -> dict[str, bytes]:
        """One artifact of many runs ({run id: its artifact URI}), as bytes. Read from each run's artifact
        repository directly (MLflow's download_artifacts looks the run up again for every file): a local
        store's files straight from disk, a server's through HTTP, READ_THREADS at a time."""
        if not runs:
            return {}
        if all(_local_dir(uri) is not None for uri in runs.values()):
            return {run_id: self._read_artifact(uri, path) for run_id, uri in runs.items()}
        with ThreadPoolExecutor(min(READ_THREADS, len(runs))) as pool:
            blobs = pool.map(lambda uri: self._read_artifact(uri, path), runs.values())
            return dict(zip(runs, blobs, strict=True))

    def _read_artifact(self, artifact_uri: str, path: str) -> bytes:
        local = _local_dir(artifact_uri)
        if local is not None:
            return (local / path).read_bytes()
        repo = get_artifact_repository(artifact_uri, tracking_uri=self.uri)
        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.call(repo.download_artifacts, path, tmp)).read_bytes()

    def end(self, run_id: str, status: str) -> None:
        """Mark a run FINISHED, FAILED or KILLED (and stamp its end time)."""
        self.call(self._client.set_terminated, run_id, status)

    def set_running(self, run_id: str) -> None:
        """A resumed run is RUNNING again, in the same MLflow run."""
        self.call(self._client.update_run, run_id, status=Status.RUNNING)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag that no longer holds (a missing one is fine)."""
        with contextlib.suppress(Exception):
            self.call(self._client.delete_tag, run_id, key)

    def get_run(self, run_id: str) -> Run:
        return self.call(self._client.get_run, run_id)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of every logged value of one metric, in step order."""
        history = self.call(self._client.get_metric_history, run_id, key)
        return sorted((m.step, m.value) for m in history)

    def metric_histories(self, run_ids: Sequence[str], key: str) -> dict[str, list[tuple[int, float]]]:
        """metric_history of many runs in a few bulk requests: a database store's bulk query, a tracking
        server's bulk-history endpoint (the one its UI charts use); one request per run elsewhere."""
        backend = self.backend
        found: dict[str, list[tuple[int, float]]] = {run_id: [] for run_id in run_ids}
        if self.remote:
            for chunk in _chunks(list(run_ids), BULK_RUNS_HTTP):
                rows = self.call(_history_bulk_http, backend.get_host_creds(), chunk, key)
                if rows is None:  # a server without the endpoint, or more values than one answer holds
                    rows = [(r, *v) for r in chunk for v in self.metric_history(r, key)]
                for run_id, step, value in rows:
                    found[run_id].append((step, value))
        elif hasattr(backend, "get_metric_history_bulk"):
            for chunk in _chunks(list(run_ids), BULK_RUNS_SQL):
                for row in self.call(backend.get_metric_history_bulk, chunk, key, 2**31 - 1):
                    found[row.run_id].append((row.step, row.value))
        else:
            return {run_id: self.metric_history(run_id, key) for run_id in run_ids}
        return {run_id: sorted(values) for run_id, values in found.items()}

    def experiment_names(self) -> list[str]:
        """The studies in this store (MLflow's Default experiment left out)."""
        return sorted(e.name for e in self.call(self._client.search_experiments) if e.name != "Default")

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run that never trained (a claim that lost the race); MLflow can restore it."""
        self.call(self._client.delete_run, run_id)

    def delete_artifacts(self, run_id: str, path: str) -> None:
        """Remove a run's artifact (a superseded checkpoint); best effort, a leftover costs only space."""
        with contextlib.suppress(Exception):
            uri = self.get_run(run_id).info.artifact_uri
            get_artifact_repository(uri, tracking_uri=self.uri).delete_artifacts(path)


READ_THREADS = 8  # artifact reads in flight at once from a tracking server
BULK_RUNS_SQL = 500  # run ids per bulk metric-history query (well under sqlite's 32,766 variables)
BULK_RUNS_HTTP = 100  # the tracking server's limit per get-history-bulk request
BULK_VALUES_HTTP = 25_000  # ... and on the values one answer holds
HISTORY_BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _local_dir(artifact_uri: str) -> Path | None:
    """A run's artifact folder when it is on this machine's disk (file: URIs), else None."""
    if urllib.parse.urlparse(artifact_uri).scheme not in ("", "file"):
        return None
    return Path(local_file_uri_to_path(artifact_uri))


def _history_bulk_http(creds: Any, run_ids: list[str], key: str) -> list[tuple[str, int, float]] | None:
    """(run id, step, value) rows of one metric from a tracking server's bulk endpoint; None when the
    server has no such endpoint or the answer may have been cut at its limit."""
    params = {"run_id": run_ids, "metric_key": key, "max_results": BULK_VALUES_HTTP}
    response = http_request(creds, HISTORY_BULK, "GET", params=params, raise_on_status=False)
    if response.status_code == 404:
        return None
    metrics = verify_rest_response(response, HISTORY_BULK).json().get("metrics", [])
    if len(metrics) >= BULK_VALUES_HTTP:
        return None
    return [(m["run_id"], int(m.get("step", 0)), float(m["value"])) for m in metrics]


def _enable_wal(db: Path) -> None:
    """Write-ahead logging lets readers and one writer work at once: far fewer "database is locked"."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
            con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error:
        pass  # another process holds the file; the store works without WAL, only with more retries
