"""A sweep: expand a study, skip what is finished, run the rest through an executor, return what happened.

It shows progress as it goes (runs, epochs) and returns the outcomes; the face (seedvar.api, the CLI)
reads the finished runs back and prints the summary table.
"""

from __future__ import annotations

import sys
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
from seedvar.record.reader import StoredRun, child_runs
from seedvar.record.recorder import SweepRecorder, tag_experiment
from seedvar.record.store import Store, StoreUnavailable, resolve_uri

STATUSES = ("done", "running", "resumable", "pending")  # a planned run's status, as --dry-run shows it


@dataclass
class SweepResult:
    """What a sweep did: its plan with each run's status before it started, its experiment and parent run,
    and each run's outcome. `summary` is filled in by the face from the runs read back."""

    study: Study
    configs: list[RunConfig]
    status: dict[str, str]  # config hash -> done | running | resumable | pending, before the sweep
    tracking_uri: str
    experiment_id: str | None = None
    parent_id: str | None = None
    outcomes: list[RunOutcome] = field(default_factory=list)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)

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
    """Run every config of a study that is not finished yet; one parent run per invocation. A dry run
    checks every setting it can (the executor's name included), reads the store and writes nothing."""
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
        return SweepResult(study, configs, plan_status(store, exp_id, configs, execution), uri, exp_id)

    _preflight(study, configs, data_root, out)  # before the store is touched: a bad input changes nothing
    executor = executors.build(execution, device)
    executor.prepare(uri)  # a cluster that cannot use this store refuses before anything is written
    try:
        return _sweep(study, execution, configs, device, executor, uri, data_root, out, progress)
    finally:
        executor.close()


def _sweep(
    study: Study,
    execution: Execution,
    configs: list[RunConfig],
    device: str,
    executor: executors.Executor,
    uri: str,
    data_root: str | Path | None,
    out: TextIO,
    progress: bool,
) -> SweepResult:
    store = Store(uri, retry_for=execution.retry_for)
    exp_id = store.experiment_id(study.name)
    tag_experiment(store, exp_id, configs)  # also for a study swept before seedvar wrote these tags
    status = plan_status(store, exp_id, configs, execution)
    result = SweepResult(study, configs, status, store.uri, exp_id)
    pending = [c for c in configs if status[c.config_hash] in ("pending", "resumable")]
    if not pending:
        print(f"nothing to do: all {len(configs)} runs of {study.name!r} are finished or running", file=out)
        return result

    sweep = SweepRecorder.start(store, exp_id, study, configs, device, execution.claim_timeout)
    result.parent_id = sweep.run_id
    ctx = RunContext(
        tracking_uri=store.uri,
        experiment_id=exp_id,
        parent_id=sweep.run_id,
        data_root=str(data_root) if data_root else None,
        download=study.download,
        execution=execution,
    )
    print(
        f"{study.name}: {len(pending)} of {len(configs)} runs to do on {device}, {executor.where(pending)} "
        f"(experiment {exp_id}, store {store.uri})",
        file=out,
    )
    status_final: str | None = "FINISHED"
    bars = Progress(len(pending), progress)
    try:
        with sweep.alive():
            result.outcomes = executor.run(pending, ctx, bars, store)
    except KeyboardInterrupt:
        status_final = "KILLED"
        raise
    except StoreUnavailable:  # the store stayed away for the whole retry window: the next sweep closes it
        status_final = None
        raise
    finally:
        bars.close()
        if status_final is None:
            sweep.release()
        else:
            sweep.end(status_final, failed=sum(o.status == "FAILED" for o in result.outcomes))
    return result


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
