"""`--executor ray`: each pending run is one Ray task, on any CPU, GPU and host of a Ray cluster.

Ray schedules (num_cpus = the run's threads; num_gpus = 1 / runs_per_gpu, so small runs share a GPU),
reuses its worker processes, and retries a task whose worker or node died; the retried task resumes
the run from its last checkpoint into the same MLflow run (runner.run_one). Workers log to the same
tracking URI as the driver, so on several hosts that must be a tracking server, not a local sqlite file.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.queue import Empty, Queue

from seedvar.engine.execution import Execution
from seedvar.engine.progress import Progress
from seedvar.engine.runner import RunContext, RunOutcome, run_one
from seedvar.errors import UserError
from seedvar.plan import RunConfig
from seedvar.record import schema
from seedvar.record.reader import read_runs
from seedvar.record.store import Store, local_db

RETRIES = 3  # times Ray reruns a task whose worker process or node died
STOP_SECONDS = 30.0  # how long Ctrl-C waits for the cancelled tasks to record their runs KILLED

_stores: dict[tuple[str, float | None], Store] = {}  # one store connection per worker process


def _task(cfg: RunConfig, ctx: RunContext, events: Queue, slot: int) -> RunOutcome:
    """In a Ray worker: run one config, sending progress events to the driver (best effort)."""
    key = (ctx.tracking_uri, ctx.execution.retry_for)
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
            store.log(outcome.run_id, tags={schema.TAG_RAY_NODE: node})
    return outcome


def hosts() -> set[str]:
    """IP addresses of the cluster's live nodes: each is one host for what its disk holds."""
    return {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}


CONNECT_SECONDS = 5.0  # how long a cluster address may take to accept a connection before we give up


def reachable(address: str, timeout: float = CONNECT_SECONDS) -> str | None:
    """None when something listens at a cluster address (`host:port` or `ray://host:port`), else why not.

    Ray itself retries an address where nothing listens for minutes, printing warnings; a TCP connect
    answers in milliseconds. "auto" and "local" name no address and are left to Ray.
    """
    if address in ("auto", "local"):
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return f"{address!r} is not host:port, ray://host:port, auto or local"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


class Executor:
    """Ray tasks, at most `jobs` in flight (default all); Ray decides where and when each runs."""

    def __init__(self, execution: Execution, device: str) -> None:
        self.execution, self.device = execution, device
        self.started = False

    def prepare(self, tracking_uri: str) -> None:
        """Start a local Ray instance (no address) or join a cluster; refuse a local sqlite store on a
        cluster of several hosts, before the store is touched."""
        # "local" starts a fresh instance: without it ray.init() would join whatever cluster this
        # machine last started (`ray start`, another sweep's test cluster) and die with it
        address = self.execution.ray_address or os.environ.get("RAY_ADDRESS") or "local"
        why = reachable(address)
        if why is not None:
            raise UserError(
                f"cannot reach a Ray cluster at {address} ({why}): start it with `ray start --head` there "
                "or fix --ray-address / $RAY_ADDRESS"
            )
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

    def where(self, pending: list[RunConfig]) -> str:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        res = ray.cluster_resources()
        return (
            f"Ray ({len(nodes)} node(s) on {len(hosts())} host(s), {int(res.get('CPU', 0))} CPUs, "
            f"{int(res.get('GPU', 0))} GPUs)"
        )

    def run(
        self, pending: list[RunConfig], ctx: RunContext, progress: Progress, store: Store
    ) -> list[RunOutcome]:
        events = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        remote = ray.remote(_task)
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        limit = self.execution.jobs or len(pending)
        waiting = list(enumerate(pending))
        refs: dict[Any, RunConfig] = {}
        outcomes: list[RunOutcome] = []
        try:
            while waiting or refs:
                while waiting and len(refs) < limit:
                    i, cfg = waiting.pop(0)
                    gpus = 1 / self.execution.runs_per_gpu if cfg.device.startswith("cuda") else 0
                    ref = remote.options(
                        num_cpus=cfg.train.threads, num_gpus=gpus, max_retries=RETRIES, name=cfg.run_name
                    ).remote(cfg, ctx, events, i % slots)
                    refs[ref] = cfg
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                self._relay(events, progress)
                for ref in ready:
                    outcome = self._outcome(ref, refs.pop(ref))
                    outcomes.append(outcome)
                    progress.finished(outcome)
            self._relay(events, progress)
        except KeyboardInterrupt:
            self._cancel(refs, store, ctx.experiment_id)
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
    def _cancel(refs: dict[Any, RunConfig], store: Store, experiment_id: str) -> None:
        """Ctrl-C: each running task gets a KeyboardInterrupt and records its run KILLED; rerunning resumes.

        Ray answers for a cancelled task at once, while its worker is still recording, and shutting Ray
        down then would kill the worker mid-record: so wait (bounded) until none of the runs is RUNNING.
        """
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False, recursive=True)
        keys = {cfg.config_hash for cfg in refs.values()}
        running = f"{schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN)} and attributes.status = 'RUNNING'"
        deadline = time.monotonic() + STOP_SECONDS
        with contextlib.suppress(Exception):
            while time.monotonic() < deadline and any(
                r.config_hash in keys for r in read_runs(store, experiment_id, running)
            ):
                time.sleep(0.2)
