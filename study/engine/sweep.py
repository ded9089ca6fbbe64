"""A sweep: expand a study, skip what is finished, run the rest through an executor, return what happened.

It shows progress as it goes (runs, epochs) and returns the outcomes; the face (seedvar.api, the CLI)
reads the finished runs back and prints the summary table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd
import torch

import seedvar.data as data
import seedvar.nets as nets
from seedvar.engine import compute, executors
from seedvar.engine.execution import Execution
from seedvar.engine.progress import Progress
from seedvar.engine.runner import RunContext, RunOutcome
from seedvar.errors import UserError
from seedvar.plan import RunConfig, Study, expand
from seedvar.record.checkpoints import checkpoints_for
from seedvar.record.claims import claims_for
from seedvar.record.reader import StoredRun, child_runs, latest_finished
from seedvar.record.recorder import SweepRecorder, tag_experiment
from seedvar.record.store import Store, StoreUnavailable, resolve_uri
from seedvar.stats.twostage import Decision, Target, decidable, decide


@dataclass
class SweepResult:
    """What a sweep did: its plan with each run's status before it started, its experiment and parent run,
    each run's outcome, and for a two-stage sweep each condition's decision (or why there is none yet).
    `summary` is filled in by the face from the runs read back."""

    study: Study
    configs: list[RunConfig]
    status: dict[str, str]  # config hash -> done | running | resumable | pending, before the sweep
    tracking_uri: str
    experiment_id: str | None = None
    parent_id: str | None = None
    outcomes: list[RunOutcome] = field(default_factory=list)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    decisions: dict[str, Decision] = field(default_factory=dict)  # condition -> its second stage
    undecided: dict[str, str] = field(default_factory=dict)  # condition -> why its pilot cannot decide yet

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "FAILED"]


def resolve_device(requested: str) -> str:
    """auto -> cuda when available, else cpu; an unavailable cuda is the user's error, said plainly."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "CUDA was requested but this machine has no usable GPU (torch.cuda.is_available() is False): "
            "use --device cpu or --device auto"
        )
    return requested


def plan_status(
    store: Store | None, experiment_id: str | None, configs: list[RunConfig], execution: Execution
) -> dict[str, str]:
    """done / running / resumable / pending for each config hash, read from the store and the claims."""
    status = {c.config_hash: "pending" for c in configs}
    if store is None or experiment_id is None:
        return status
    claims = claims_for(store, experiment_id, timeout=execution.claim_timeout)
    checkpoints = checkpoints_for(store, experiment_id)
    runs: dict[str, list[StoredRun]] = {}
    for run in child_runs(store, experiment_id):
        runs.setdefault(run.config_hash, []).append(run)
        if run.config_hash in status and run.finished:
            status[run.config_hash] = "done"
    for key, state in status.items():
        if state == "pending" and claims.is_claimed(key, runs.get(key, [])):
            status[key] = "running"
        elif state == "pending" and checkpoints.exists(key):
            status[key] = "resumable"
    return status


def plan_table(configs: list[RunConfig], status: dict[str, str]) -> pd.DataFrame:
    """The expanded plan, one row per run with its seeds, hash and status (what --dry-run prints)."""
    rows = [
        {
            "run": c.run_name,
            "model": c.model,
            "deterministic": c.deterministic,
            **({"variant": c.variant} if c.variant else {}),
            "varied": c.varied,
            "replicate": c.replicate,
            **{f"seed.{k}": v for k, v in c.seeds.items()},
            "hash": c.config_hash,
            "status": status[c.config_hash],
        }
        for c in configs
    ]
    return pd.DataFrame(rows)


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
    the rest. A dry run checks every setting it can (the executor's name included), reads the store,
    decides what the finished pilots allow, and writes nothing."""
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
            _decide(result, study, device, pilot_accuracies(store, exp_id, configs, study.target))
            result.status.update(plan_status(store, exp_id, result.configs, execution))
        return result

    _preflight(study, configs, data_root, out)  # before the store is touched: a bad input changes nothing
    executor = executors.build(execution, device)
    executor.prepare(uri)  # a cluster that cannot use this store refuses before anything is written
    try:
        return _Sweep(study, execution, device, executor, uri, data_root, out, progress).run(configs)
    finally:
        executor.close()


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
        tag_experiment(self.store, self.exp_id, configs, target)  # also for a study swept before these tags
        result = SweepResult(
            study,
            list(configs),  # its own list: a second stage extends it
            plan_status(self.store, self.exp_id, configs, self.execution),
            self.store.uri,
            self.exp_id,
        )
        status_final: str | None = "FINISHED"
        try:
            if target.active:
                print(
                    f"{study.name}: two-stage sweep, pilot of {target.pilot} replicates per condition; then "
                    f"{target.rule().split('; pilot')[0]}",
                    file=self.out,
                )
            self._stage(result, configs, "pilot" if target.active else "", wait=target.active)
            if target.active:
                _decide(
                    result, study, self.device, pilot_accuracies(self.store, self.exp_id, configs, target)
                )
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
            status_final = "KILLED"
            raise
        except StoreUnavailable:  # the store stayed away for the whole retry window: the next sweep closes it
            status_final = None
            raise
        finally:
            self.alive.close()
            if self.recorder is not None and status_final is None:
                self.recorder.release()
            elif self.recorder is not None:
                self.recorder.end(status_final, failed=sum(o.status == "FAILED" for o in result.outcomes))
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
                if status[c.config_hash] in ("pending", "resumable") and c.config_hash not in tried
            ]
            if pending:
                parent = self._parent(result)
                ctx = RunContext(
                    tracking_uri=self.store.uri,
                    experiment_id=self.exp_id,
                    parent_id=parent.run_id,
                    data_root=str(self.data_root) if self.data_root else None,
                    download=self.study.download,
                    execution=self.execution,
                )
                stage = f"{label}: " if label else ""
                print(
                    f"{self.study.name}: {stage}{len(pending)} of {len(configs)} runs to do on {self.device}, "
                    f"{self.executor.where(pending)} (experiment {self.exp_id}, store {self.store.uri})",
                    file=self.out,
                )
                bars = Progress(len(pending), self.progress, label)
                try:
                    result.outcomes += self.executor.run(pending, ctx, bars, self.store)
                finally:
                    bars.close()
                tried |= {c.config_hash for c in pending}
                continue
            running = [c.run_name for c in configs if status[c.config_hash] == "running"]
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

    def _say_decisions(self, result: SweepResult) -> None:
        mode = self.study.target.mode
        for cond, why in result.undecided.items():
            print(f"{cond}: {why}; rerun the sweep to decide its second stage", file=self.out)
        for cond, d in result.decisions.items():
            head = f"{cond}: pilot {d.n0}/{d.n0}, seed std {d.s:.2f} points in {mode} mode"
            if d.more == 0:
                tail = f"n = {d.n}: the pilot is enough (Stein half-width {d.half_width:.2f})"
            else:
                tail = f"then {d.more} more (n = {d.n}, Stein half-width {d.half_width:.2f})"
            if d.capped:
                tail += f"; capped at max_replicates = {d.n} (the rule asks for {d.wanted})"
            print(f"{head}, {tail}", file=self.out)


WAIT_SECONDS = 2.0  # how often a two-stage sweep looks whether the pilot runs of another sweep finished


def pilot_accuracies(
    store: Store | None, experiment_id: str | None, pilots: list[RunConfig], target: Target
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per condition, the target mode's per-model accuracy (points, as logged) of its finished pilot runs
    and the test set's resolution (points): what every host reads from the store alike, so they decide
    alike. No store yet: no finished pilot."""
    finished = latest_finished(child_runs(store, experiment_id)) if store and experiment_id else {}
    out: dict[str, list[float]] = {}
    grid: dict[str, float] = {}
    for c in pilots:
        cond = c.condition.name
        out.setdefault(cond, [])
        run = finished.get(c.config_hash)
        summary = run.summaries.get(target.mode) if run is not None else None
        if summary is not None:
            out[cond].append(100 * summary.acc_mean)
            grid[cond] = max(grid.get(cond, 0.0), run.resolution)
    return out, grid


def _decide(
    result: SweepResult, study: Study, device: str, pilots: tuple[dict[str, list[float]], dict[str, float]]
) -> None:
    """Decide every condition whose pilot is complete and extend the plan with its second stage: the
    replicates n0..n-1, the very configs of a plain sweep with --replicates n."""
    target = study.target
    finished, grid = pilots
    complete, result.undecided = decidable(finished, target)
    result.decisions = decide(complete, target, grid) if complete else {}
    by_n: dict[int, list[str]] = {}
    for cond, d in result.decisions.items():
        by_n.setdefault(d.n, []).append(cond)
    for n, conds in sorted(by_n.items()):
        if n > target.pilot:
            more = dataclasses.replace(study, seeds=dataclasses.replace(study.seeds, replicates=n))
            result.configs += [
                c for c in expand(more, device) if c.replicate >= target.pilot and c.condition.name in conds
            ]


def _preflight(study: Study, configs: list[RunConfig], data_root: str | Path | None, out: TextIO) -> None:
    """Load the first run's data of every dataset variant, build every model for it and run it once on
    zeros, before any run exists: a missing file, an impossible option or a model that cannot take this
    input fails at once instead of as N failed runs. Settings that are legal but likely a slip (a batch
    larger than the training set) get a warning line."""
    firsts: dict[str, RunConfig] = {}
    for c in configs:
        firsts.setdefault(c.variant, c)
    for cfg in firsts.values():
        try:
            task = compute.load_data(cfg, data_root=data_root, download=study.download)
        except data.DataError as exc:
            where = f" ({cfg.variant})" if cfg.variant else ""
            raise UserError(f"{study.source}: dataset{where}: {exc}") from None
        n_train = len(task.train)
        if study.train.batch_size > n_train:
            where = f" ({cfg.variant})" if cfg.variant else ""
            print(
                f"warning: train.batch_size = {study.train.batch_size:,} exceeds the {n_train:,} training samples "
                f"of {cfg.dataset}{where}: every epoch is a single step on all of them",
                file=out,
            )
        for model in study.models:
            first = next(c for c in configs if c.model == model and c.variant == cfg.variant)
            try:
                built = compute.build_model(first, task)
                nets.probe(model, built, task.num_classes, task.in_shape)
            except nets.ModelError as exc:
                reason = str(exc).removeprefix(f"{model}: ")
                raise UserError(
                    f"{study.source}: {model} cannot train on {cfg.dataset} {task.in_shape}: {reason}"
                ) from None
