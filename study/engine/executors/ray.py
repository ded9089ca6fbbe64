"""`--executor ray`: each pending run is one Ray task, on any CPU, GPU and host of a Ray cluster.

Ray schedules (num_cpus = the run's threads; num_gpus = 1 / runs_per_gpu, so small runs share a GPU),
reuses its worker processes, and retries a task whose worker or node died; the retried task resumes
the run from its last checkpoint into the same MLflow run (runner.run_one). Workers log to the same
tracking URI as the driver, so on several hosts that must be a tracking server, not a local sqlite file.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError, TaskCancelledError
from ray.util.queue import Empty, Queue

from study.engine.executors import Options
from study.engine.progress import Progress
from study.engine.runner import RunContext, RunOutcome, run_one
from study.errors import UserError
from study.plan import RunConfig
from study.record.schema import TAG_RAY_NODE
from study.record.store import Store, local_db

RETRIES = 3  # times Ray reruns a task whose worker process or node died

_stores: dict[tuple[str, float | None], Store] = {}  # one store connection per worker process


def _task(cfg: RunConfig, ctx: RunContext, events: Queue, slot: int) -> RunOutcome:
    """In a Ray worker: run one config, sending progress events to the driver (best effort)."""
    key = (ctx.tracking_uri, ctx.retry_for)
    if key not in _stores:
        _stores[key] = ctx.store()
    store = _stores[key]

    def emit(kind: str, payload: dict[str, Any]) -> None:
        if kind != "end":  # the outcome travels as the task's result
            with contextlib.suppress(Exception):
                events.put_nowait((kind, slot, payload))

    outcome = run_one(cfg, ctx, store, emit)
    if outcome.run_id and outcome.status in ("FINISHED", "FAILED"):
        node = ray.get_runtime_context().get_node_id()
        with contextlib.suppress(Exception):
            store.log(outcome.run_id, tags={TAG_RAY_NODE: node})
    return outcome


def hosts() -> set[str]:
    """IP addresses of the cluster's live nodes: each is one host for what its disk holds."""
    return {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}


class Executor:
    """Ray tasks submitted all at once; Ray decides where and when each runs."""

    def __init__(self, store: Store | None, options: Options) -> None:
        self.options = options
        self.started = False

    def prepare(self, tracking_uri: str) -> None:
        """Start a local Ray instance (no address) or join a cluster; refuse a local sqlite store on a
        cluster of several hosts, before the store is touched."""
        # "local" starts a fresh instance: without it ray.init() would join whatever cluster this
        # machine last started (`ray start`, another sweep's test cluster) and die with it
        address = self.options.ray_address or os.environ.get("RAY_ADDRESS") or "local"
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address, include_dashboard=False, log_to_driver=True, logging_level="WARNING"
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(
                    f"cannot join the Ray cluster at {address} ({str(exc).splitlines()[0][:150]}): start it with "
                    "`ray start --head` or fix --ray-address"
                ) from None
            self.started = True
        db = local_db(tracking_uri)
        if db is not None and len(hosts()) > 1:
            raise UserError(
                f"the Ray cluster spans {len(hosts())} hosts but the store is the local file {db}, which the "
                "other hosts cannot write: start a tracking server (`seedvar server`) and pass "
                "--tracking-uri http://HOST:PORT"
            )

    def close(self) -> None:
        if self.started:
            ray.shutdown()

    def where(self) -> str:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        res = ray.cluster_resources()
        return (
            f"Ray ({len(nodes)} node(s) on {len(hosts())} host(s), {int(res.get('CPU', 0))} CPUs, "
            f"{int(res.get('GPU', 0))} GPUs)"
        )

    def run(self, pending: list[RunConfig], ctx: RunContext, progress: Progress) -> list[RunOutcome]:
        events = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        remote = ray.remote(_task)
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        refs: dict[Any, RunConfig] = {}
        for i, cfg in enumerate(pending):
            gpus = 1 / self.options.runs_per_gpu if cfg.device.startswith("cuda") else 0
            ref = remote.options(
                num_cpus=cfg.train.threads, num_gpus=gpus, max_retries=RETRIES, name=cfg.run_name
            ).remote(cfg, ctx, events, i % slots)
            refs[ref] = cfg
        outcomes: list[RunOutcome] = []
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                self._relay(events, progress)
                for ref in ready:
                    outcome = self._outcome(ref, refs.pop(ref))
                    outcomes.append(outcome)
                    progress.finished(outcome)
            self._relay(events, progress)
        except KeyboardInterrupt:
            self._cancel(refs)
            raise
        finally:
            with contextlib.suppress(Exception):
                events.shutdown()
        return outcomes

    @staticmethod
    def _outcome(ref: Any, cfg: RunConfig) -> RunOutcome:
        try:
            return ray.get(ref)
        except RayError as exc:  # retries exhausted, or the task itself raised
            reason = f"Ray task failed after {RETRIES} retries: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            return RunOutcome(cfg.config_hash, cfg.run_name, "FAILED", reason=reason)

    @staticmethod
    def _relay(events: Queue, progress: Progress) -> None:
        with contextlib.suppress(Empty):
            for kind, slot, payload in events.get_nowait_batch(events.qsize()):
                progress.event(slot, kind, payload)

    @staticmethod
    def _cancel(refs: dict[Any, RunConfig]) -> None:
        """Ctrl-C: each running task gets a KeyboardInterrupt, so its run is marked KILLED; rerunning resumes."""
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False, recursive=True)
        for ref in refs:
            with contextlib.suppress(TaskCancelledError, RayError, GetTimeoutError):
                ray.get(ref, timeout=30)
