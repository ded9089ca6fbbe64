"""A sweep: expand a study, skip what is finished, run the rest through an executor (each run a tracked run),
decide a two-stage study's second stage from its pilot, and finish: the condition runs and the summary.

It shows progress as it goes (runs, epochs, the stages' decisions) and returns the whole sweep; the face
(seedvar.api, the CLI) prints its summary table.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TextIO

from seedvar.engine import executors
from seedvar.engine.executors import pool
from seedvar.engine.progress import Progress
from seedvar.errors import UserError
from seedvar.plan import RunConfig, Study, expand
from seedvar.plan.execution import Execution
from seedvar.record.recorder import RunRecorder
from seedvar.record.retry import StoreUnavailable
from seedvar.record.store import Store, local_db, resolve_uri
from seedvar.record.sweep_run import SweepRecorder, tag_experiment
from seedvar.results import RunOutcome, Status
from seedvar.sweeper.finish import finish
from seedvar.sweeper.preflight import preflight, resolve_device
from seedvar.sweeper.second_stage import WAIT_SECONDS, Pilots, pilots, second_stage
from seedvar.sweeper.status import PENDING, RESUMABLE, RUNNING, plan_status
from seedvar.sweeper.sweep_result import SweepResult
from seedvar.sweeper.tracked import RunContext, TrackedRun


def run_sweep(
    study: Study,
    execution: Execution,
    *,
    tracking_uri: str | None = None,
    data_root: str | Path | None = None,
    dry_run: bool = False,
    out: TextIO | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run every config of a study that is not finished yet; one parent run per invocation. A two-stage
    study runs its pilot, decides each condition's replicates from the pilot runs in the store, then runs
    the rest; the sweep ends by recording each condition's spread and reading back its summary table.
    A dry run checks every setting it can (the executor's name included), reads the store, decides what
    the finished pilots allow, and writes nothing."""
    pool.refuse_in_worker_startup()  # a script without a main guard, imported again by a pool's worker
    out = out or sys.stdout
    uri = resolve_uri(tracking_uri)
    executors.check(execution.executor)
    device = resolve_device(study.device)
    configs = expand(study, device)
    if dry_run:
        try:
            store: Store | None = Store(uri, create=False, retry_for=execution.retry_for)
        except UserError:
            store = None  # no store yet: every run is pending, and a dry run creates nothing
        exp_id = store.experiment_id(study.name, create=False) if store else None
        result = SweepResult(
            study, list(configs), plan_status(store, exp_id, configs, execution), uri, exp_id
        )
        if study.target.active:
            _decide(result, device, pilots(store, exp_id, configs, study.target))
            result.status.update(plan_status(store, exp_id, result.configs, execution))
        return result

    preflight(study, configs, data_root)  # before the store is touched: a bad input changes nothing
    executor = executors.build(execution, device)
    executor.prepare()
    try:
        _refuse_local_store_on_hosts(uri, executor)  # before anything is written
        result = _Sweep(study, execution, device, executor, uri, data_root, out, progress).run(configs)
    finally:
        executor.close()
    finish(result)
    return result


def _refuse_local_store_on_hosts(uri: str, executor: executors.Executor) -> None:
    """A local sqlite file cannot be written from the other hosts of a cluster."""
    db, hosts = local_db(uri), executor.hosts()
    if db is not None and hosts > 1:
        raise UserError(
            f"the Ray cluster spans {hosts} hosts but the store is the local file {db}, which the "
            "other hosts cannot write: start a tracking server (`seedvar server`) and pass "
            "--tracking-uri http://HOST:PORT"
        )


def _decide(result: SweepResult, device: str, found: Pilots) -> None:
    """Decide every condition whose pilot is complete and extend the plan with its second stage."""
    result.decisions, result.undecided, extra = second_stage(result.study, device, found)
    result.configs += extra


class _Sweep:
    """One invocation: its store, its executor, and its parent run, started when the first run is due."""

    def __init__(
        self,
        study: Study,
        execution: Execution,
        device: str,
        executor: executors.Executor,
        uri: str,
        data_root: str | Path | None,
        out: TextIO,
        progress: bool,
    ) -> None:
        self.study, self.execution, self.device, self.executor = study, execution, device, executor
        self.data_root, self.out, self.progress = data_root, out, progress
        self.store = Store(uri, retry_for=execution.retry_for)
        self.exp_id = self.store.experiment_id(study.name)
        self.recorder: SweepRecorder | None = None
        self.alive: contextlib.ExitStack = contextlib.ExitStack()

    def run(self, configs: list[RunConfig]) -> SweepResult:
        study, target = self.study, self.study.target
        tag_experiment(
            self.store, self.exp_id, configs, target, study.claims
        )  # also for a study swept before these tags
        result = SweepResult(
            study,
            list(configs),  # its own list: a second stage extends it
            plan_status(self.store, self.exp_id, configs, self.execution),
            self.store.uri,
            self.exp_id,
        )
        status_final: str | None = Status.FINISHED
        try:
            if target.active:
                print(
                    f"{study.name}: two-stage sweep, pilot of {target.pilot} replicates per condition; then "
                    f"{target.rule().split('; pilot')[0]}",
                    file=self.out,
                )
            self._stage(result, configs, "pilot" if target.active else "", wait=target.active)
            if target.active:
                _decide(result, self.device, pilots(self.store, self.exp_id, configs, target))
                self._say_decisions(result)
                extra = result.configs[len(configs) :]
                result.status.update(plan_status(self.store, self.exp_id, extra, self.execution))
                self._stage(result, extra, "stage 2", wait=False)
                if self.recorder is not None:
                    self.recorder.log_decisions(target, result.decisions, result.configs)
            if self.recorder is None:
                print(
                    f"nothing to do: all {len(result.configs)} runs of {study.name!r} are finished or running",
                    file=self.out,
                )
        except KeyboardInterrupt:
            status_final = Status.KILLED
            raise
        except StoreUnavailable:  # the store stayed away for the whole retry window: the next sweep closes it
            status_final = None
            raise
        except UserError:  # stopped by what the user must change (a script without a main guard)
            status_final = "FAILED"
            raise
        finally:
            self.alive.close()
            if self.recorder is not None and status_final is None:
                self.recorder.release()
            elif self.recorder is not None:
                self.recorder.end(
                    status_final, failed=sum(o.status == Status.FAILED for o in result.outcomes)
                )
        return result

    def _parent(self, result: SweepResult) -> SweepRecorder:
        """The sweep's parent run, started at the first run that is due (a sweep with nothing to do records nothing)."""
        if self.recorder is None:
            self.recorder = SweepRecorder.start(
                self.store, self.exp_id, self.study, result.configs, self.device, self.execution.claim_timeout
            )
            result.parent_id = self.recorder.run_id
            self.alive.enter_context(self.recorder.alive())
        return self.recorder

    def _stage(self, result: SweepResult, configs: list[RunConfig], label: str, wait: bool) -> None:
        """Run the stage's pending configs, each at most once; with `wait`, also wait for those another
        sweep is running (a pilot must be complete before anyone decides from it)."""
        tried: set[str] = set()
        said_waiting = False
        while True:
            status = plan_status(self.store, self.exp_id, configs, self.execution)
            pending = [
                c
                for c in configs
                if status[c.config_hash] in (PENDING, RESUMABLE) and c.config_hash not in tried
            ]
            if pending:
                parent = self._parent(result)
                job = TrackedRun(
                    RunContext(
                        tracking_uri=self.store.uri,
                        experiment_id=self.exp_id,
                        parent_id=parent.run_id,
                        data_root=str(self.data_root) if self.data_root else None,
                        download=self.study.download,
                        execution=self.execution,
                    ),
                    store=self.store,  # in this process, the sweep's own connection
                )
                stage = f"{label}: " if label else ""
                print(
                    f"{self.study.name}: {stage}{len(pending)} of {len(configs)} runs to do on {self.device}, "
                    f"{self.executor.where(pending)} (experiment {self.exp_id}, store {self.store.uri})",
                    file=self.out,
                )
                bars = Progress(len(pending), self.progress, label)
                try:
                    outcomes = self.executor.run(pending, job, bars)
                finally:
                    bars.close()
                self._record_nodes(outcomes)
                result.outcomes += outcomes
                tried |= {c.config_hash for c in pending}
                continue
            running = [c.run_name for c in configs if status[c.config_hash] == RUNNING]
            if not (wait and running):
                return
            if not said_waiting:
                print(
                    f"waiting for {len(running)} {label} run(s) in another sweep ({', '.join(running[:4])}"
                    f"{', ...' if len(running) > 4 else ''}): the second stage is decided from the whole pilot",
                    file=self.out,
                )
                said_waiting = True
            time.sleep(WAIT_SECONDS)

    def _record_nodes(self, outcomes: list[RunOutcome]) -> None:
        """Where each run ran, when the executor says (a Ray node), as its run's tag."""
        for o in outcomes:
            if o.node and o.run_id and o.status in (Status.FINISHED, Status.FAILED):
                RunRecorder(self.store, o.run_id).log_node(o.node)

    def _say_decisions(self, result: SweepResult) -> None:
        mode = self.study.target.mode
        for cond, why in result.undecided.items():
            print(f"{cond}: {why}; rerun the sweep to decide its second stage", file=self.out)
        for cond, d in result.decisions.items():
            floor = f" (floored at {d.floor:.2f}, the test set's resolution)" if d.floor > d.s else ""
            head = f"{cond}: pilot {d.n0}/{d.n0}, seed std {d.s:.2f} points in {mode} mode{floor}"
            if d.more == 0:
                tail = f"n = {d.n}: the pilot is enough (Stein half-width {d.half_width:.2f})"
            else:
                tail = f"then {d.more} more (n = {d.n}, Stein half-width {d.half_width:.2f})"
            if d.capped:
                tail += f"; capped at max_replicates = {d.n} (the rule asks for {d.wanted})"
            print(f"{head}, {tail}", file=self.out)
