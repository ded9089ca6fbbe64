"""`--executor ray`: each pending run is one Ray task, on any CPU, GPU and host of a Ray cluster.

Ray schedules (num_cpus = the run's threads; num_gpus = 1 / runs_per_gpu, so small runs share a GPU),
reuses its worker processes, and retries a task whose worker or node died; the retried task runs the
same job again, which resumes the run from its last checkpoint (seedvar.sweeper.tracked). Each outcome
says which Ray node ran it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

import ray
from ray import cloudpickle
from ray.exceptions import RayError
from ray.util.queue import Empty, Queue

from seedvar.engine.executors import Job
from seedvar.engine.progress import Progress
from seedvar.errors import UserError
from seedvar.plan import RunConfig
from seedvar.plan.execution import Execution
from seedvar.results import Events, RunOutcome, Status

RETRIES = 3  # times Ray reruns a task whose worker process or node died
STOP_SECONDS = 30.0  # how long Ctrl-C waits for the cancelled tasks to say they recorded how they ended
SETTLE_SECONDS = 1.0  # ... and at least, so that the "begin" of a task that just started has arrived

_jobs: dict[bytes, Job] = {}  # one job per worker process and sweep: it keeps its store connection


def _task(job: Job, cfg: RunConfig, events: Queue, slot: int) -> RunOutcome:
    """In a Ray worker: run the job for one config, sending progress events to the driver (best effort;
    the outcome travels as the task's result, with the node it ran on)."""
    key = cloudpickle.dumps(job)
    job = _jobs.setdefault(key, job)

    def emit(kind: str, payload: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            events.put_nowait((kind, slot, {k: v for k, v in payload.items() if k != "outcome"}))

    outcome = job(cfg, emit)
    outcome.node = ray.get_runtime_context().get_node_id()
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

    def prepare(self) -> None:
        """Start a local Ray instance (no address) or join a cluster."""
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

    def hosts(self) -> int:
        return len(hosts())

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

    def run(self, pending: list[RunConfig], job: Job, progress: Progress) -> list[RunOutcome]:
        events = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        remote = ray.remote(_task)
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        limit = self.execution.jobs or len(pending)
        waiting = list(enumerate(pending))
        refs: dict[Any, RunConfig] = {}
        running: set[str] = set()  # runs whose job said "begin" and not yet "end"
        outcomes: list[RunOutcome] = []
        try:
            while waiting or refs:
                while waiting and len(refs) < limit:
                    i, cfg = waiting.pop(0)
                    gpus = 1 / self.execution.runs_per_gpu if cfg.device.startswith("cuda") else 0
                    ref = remote.options(
                        num_cpus=cfg.train.threads, num_gpus=gpus, max_retries=RETRIES, name=cfg.run_name
                    ).remote(job, cfg, events, i % slots)
                    refs[ref] = cfg
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                self._relay(events, progress, running)
                for ref in ready:
                    outcome = self._outcome(ref, refs.pop(ref))
                    outcomes.append(outcome)
                    progress.finished(outcome)
            self._relay(events, progress, running)
        except KeyboardInterrupt:
            self._cancel(refs, events, progress, running)
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
            return RunOutcome(cfg.config_hash, cfg.run_name, Status.FAILED, reason=reason)

    @staticmethod
    def _relay(events: Queue, progress: Progress, running: set[str]) -> None:
        with contextlib.suppress(Empty):
            for kind, slot, payload in events.get_nowait_batch(events.qsize()):
                if kind == Events.BEGIN:
                    running.add(payload["name"])
                elif kind == Events.END:
                    running.discard(payload["name"])
                progress.event(slot, kind, payload)

    @classmethod
    def _cancel(
        cls, refs: dict[Any, RunConfig], events: Queue, progress: Progress, running: set[str]
    ) -> None:
        """Ctrl-C: each running task gets a KeyboardInterrupt and records its run KILLED; rerunning resumes.

        Ray answers for a cancelled task at once, while its worker is still recording, and shutting Ray
        down then would kill the worker mid-record: so wait (bounded) until every job that began has said
        "end", which it says after recording.
        """
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False, recursive=True)
        start = time.monotonic()
        with contextlib.suppress(Exception):
            while time.monotonic() < start + STOP_SECONDS:
                cls._relay(events, progress, running)  # a "begin" still on its way counts too
                if not running and time.monotonic() > start + SETTLE_SECONDS:
                    return
                time.sleep(0.2)
