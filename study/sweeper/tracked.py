"""The tracked run: one config of a sweep, start to finish, as the record sees it.

claim its config -> resume or start its MLflow run -> compute (seedvar.engine.compute) with hooks that log
each epoch and checkpoint -> record the result -> release the claim. The engine computes and knows no
store; the record stores and knows no training; this is where the two meet. `TrackedRun` is the job an
executor runs for each config: picklable, so worker processes and Ray tasks rebuild it, each opening its
own store connection once.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import seedvar.data as data
from seedvar.engine import checkpoint, compute
from seedvar.engine.checkpoint import CheckpointStore
from seedvar.engine.train import NonFiniteLoss, Trainer
from seedvar.plan import RunConfig
from seedvar.plan.execution import Execution
from seedvar.record.checkpoint_store import checkpoints_for
from seedvar.record.claims import Claim, claims_for
from seedvar.record.reader import child_runs
from seedvar.record.recorder import RunRecorder
from seedvar.record.retry import StoreUnavailable
from seedvar.record.store import Store
from seedvar.results import EpochStats, Event, Events, RunOutcome, Status

# The statuses of a run that stopped unfinished (RUNNING: a process that died; a live claimant's run is
# skipped before this is read)
STOPPED = (Status.KILLED, Status.RUNNING)


@dataclass(frozen=True)
class RunContext:
    """Where a run logs and reads its data; picklable so worker processes can rebuild everything."""

    tracking_uri: str
    experiment_id: str
    parent_id: str
    data_root: str | None = None
    download: bool = False
    # checkpoint interval, claim timeout and retry window (with the rest of where runs run)
    execution: Execution = Execution()

    def store(self) -> Store:
        """The store, opened in this process (a worker's own connection)."""
        return Store(self.tracking_uri, retry_for=self.execution.retry_for)


class ClaimLost(Exception):
    """Another sweep took this config over (a stale heartbeat, then a late one): stop without recording."""


class _Hooks(compute.Hooks):
    """Log each epoch, checkpoint when due (and after the last epoch), tell the progress display."""

    def __init__(
        self,
        cfg: RunConfig,
        ctx: RunContext,
        recorder: RunRecorder,
        checkpoints: CheckpointStore,
        claim: Claim,
        emit: Event,
    ) -> None:
        self.cfg, self.ctx, self.recorder, self.checkpoints, self.emit = cfg, ctx, recorder, checkpoints, emit
        self.claim = claim
        self.last_checkpoint = time.monotonic()

    def started(self, task: data.Task, epoch: int) -> None:
        if epoch == 0:
            self.recorder.log_data(self.cfg, task.info, task.fingerprint)
        self.emit(Events.START, {"name": self.cfg.run_name, "epochs": self.cfg.train.epochs, "epoch": epoch})
        self.last_checkpoint = time.monotonic()

    def epoch(self, stats: EpochStats, trainer: Trainer) -> None:
        if self.claim.lost():
            raise ClaimLost(f"{self.cfg.run_name}: another sweep took this config over")
        logged = self.recorder.log_epoch(stats)
        last = trainer.epoch == self.cfg.train.epochs
        # a checkpoint never runs ahead of the logged epochs, so a resumed run has every epoch's metrics
        if logged and (
            last or time.monotonic() - self.last_checkpoint >= self.ctx.execution.checkpoint_every
        ):
            blob = checkpoint.to_bytes(self.recorder.run_id, trainer.state_dict())
            with contextlib.suppress(StoreUnavailable):  # the store is away: the next epoch tries again
                self.checkpoints.put(self.cfg.config_hash, self.recorder.run_id, blob)
                self.last_checkpoint = time.monotonic()
        self.emit(
            Events.EPOCH,
            {"name": self.cfg.run_name, "epoch": stats.epoch, "loss": stats.loss, "acc": stats.acc},
        )

    def testing(self) -> None:
        self.emit(Events.TESTING, {"name": self.cfg.run_name})


def run_one(cfg: RunConfig, ctx: RunContext, store: Store, emit: Event) -> RunOutcome:
    """Train and test one config unless it is finished or owned by a live claimant; never raises for a bad
    run (a Ctrl-C, SIGTERM or an unreachable store stop the sweep, so those do)."""
    key = cfg.config_hash
    checkpoints = checkpoints_for(store, ctx.experiment_id)
    claims = claims_for(store, ctx.experiment_id, ctx.parent_id, ctx.execution.claim_timeout)
    with claims.claim(key) as claim:
        if not claim.held:
            return RunOutcome(key, cfg.run_name, Status.SKIPPED, reason="running in another live process")
        previous = child_runs(store, ctx.experiment_id, key)
        if any(r.finished for r in previous):
            return RunOutcome(key, cfg.run_name, Status.SKIPPED, reason="already finished")
        if any(claim.live(r) for r in previous):
            return RunOutcome(key, cfg.run_name, Status.SKIPPED, reason="running in another sweep")
        state = checkpoint.from_bytes(checkpoints.get(key))
        created = False
        if state is not None and state["run_id"] in {r.run_id for r in previous}:
            recorder = RunRecorder.resume(store, state["run_id"], state["trainer"]["epoch"])
        else:
            state = None
            # stopped before its first checkpoint (Ctrl-C: KILLED; a dead process: left RUNNING): trained
            # again from the start in its own run, not a new one beside it (epochs it logged stay, once)
            stopped = sorted((r for r in previous if r.status in STOPPED), key=lambda r: r.start_time)
            for r in stopped[:-1]:  # older ones (from before this rule) are closed, as before
                if r.status == Status.RUNNING:
                    RunRecorder.abandon(store, r.run_id, "process died before its first checkpoint")
            if stopped:
                recorder = RunRecorder.resume(store, stopped[-1].run_id, 0)
            else:
                recorder, created = RunRecorder.start(store, cfg, ctx.experiment_id, ctx.parent_id), True
        if not claim.contest(recorder.run_id):
            if created:
                recorder.stand_down()
            return RunOutcome(key, cfg.run_name, Status.SKIPPED, reason="claimed first by another sweep")
        with claim.heartbeat(recorder.run_id):
            return _execute(cfg, ctx, recorder, checkpoints, claim, state, emit)


def _execute(
    cfg: RunConfig,
    ctx: RunContext,
    recorder: RunRecorder,
    checkpoints: CheckpointStore,
    claim: Claim,
    state: dict[str, Any] | None,
    emit: Event,
) -> RunOutcome:
    outcome = RunOutcome(cfg.config_hash, cfg.run_name, Status.RUNNING, run_id=recorder.run_id)
    start = time.perf_counter()
    try:
        result = compute.run(
            cfg,
            data_root=ctx.data_root,
            download=ctx.download,
            resume=state["trainer"] if state is not None else None,
            hooks=_Hooks(cfg, ctx, recorder, checkpoints, claim, emit),
        )
        if claim.lost():
            raise ClaimLost(f"{cfg.run_name}: another sweep took this config over")
        recorder.finish(result)
        outcome.status, outcome.weights_sha256 = Status.FINISHED, result.weights_sha256
        outcome.summaries = result.summaries
        checkpoints.delete(cfg.config_hash, recorder.run_id)
    except ClaimLost as exc:  # the run now belongs to the other sweep: write nothing into it
        outcome.status, outcome.reason = Status.SKIPPED, str(exc)
    except NonFiniteLoss as exc:
        outcome.status, outcome.reason = Status.FAILED, str(exc)
        recorder.fail(outcome.reason)
        checkpoints.delete(cfg.config_hash, recorder.run_id)
    except KeyboardInterrupt:
        outcome.status, outcome.reason = (
            Status.KILLED,
            "interrupted (Ctrl-C or SIGTERM); rerun the sweep to resume",
        )
        recorder.kill(outcome.reason)
        raise
    except StoreUnavailable:  # nothing can be recorded: the sweep stops, the run stays RUNNING, resumable
        raise
    except Exception as exc:  # a broken run must not stop the sweep: record why and go on
        outcome.status, outcome.reason = Status.FAILED, f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        recorder.fail(outcome.reason)
    outcome.seconds = time.perf_counter() - start
    return outcome


@dataclass
class TrackedRun:
    """The job a sweep gives its executor: `job(cfg, emit)` runs one config as `run_one` does, in whatever
    process the executor chose, and says "begin" and (always, even when interrupted) "end" through `emit`,
    so an executor that stops its runs can wait until each has recorded how it ended."""

    ctx: RunContext
    store: Store | None = field(default=None, repr=False, compare=False)  # opened where the job runs

    def __getstate__(self) -> dict[str, Any]:
        return {"ctx": self.ctx, "store": None}  # a store connection stays in its process

    def __call__(self, cfg: RunConfig, emit: Event) -> RunOutcome:
        if self.store is None:
            self.store = self.ctx.store()
        emit(Events.BEGIN, {"name": cfg.run_name})
        outcome: RunOutcome | None = None
        try:
            outcome = run_one(cfg, self.ctx, self.store, emit)
            return outcome
        finally:
            emit(Events.END, {"name": cfg.run_name, "outcome": outcome})
