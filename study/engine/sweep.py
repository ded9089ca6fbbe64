"""`seedvar sweep`: expand a study, skip what is finished, run the rest, print the summary table."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import pandas as pd
import torch
from mlflow.entities import Run

import data
import nets
from study.engine import compute
from study.engine.executors import Executor, Options, get_executor
from study.engine.progress import Progress
from study.engine.runner import RunContext, RunOutcome
from study.errors import UserError
from study.plan import RunConfig, Study, expand
from study.record import schema as s
from study.record.defaults import DEFAULT_CLAIM_TIMEOUT
from study.record.recorder import SweepRecorder, tag_experiment
from study.record.store import Store, resolve_uri


@dataclass
class SweepResult:
    """What a sweep did: its experiment and parent run, each run's outcome, the summary table."""

    experiment_id: str | None
    parent_id: str | None
    outcomes: list[RunOutcome]
    summary: pd.DataFrame

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


def resolve_jobs(
    jobs: int | None, device: str, threads: int, pending: int, runs_per_gpu: int = 1, gpus: int = 0
) -> int:
    """None = auto: on a CPU as many workers as the cores allow (cores // threads per run), on GPUs
    runs_per_gpu per GPU. Never more workers than runs."""
    if jobs is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        jobs = max(1, cores // threads) if device == "cpu" else max(1, gpus) * runs_per_gpu
    return max(1, min(jobs, pending))


def plan_status(
    store: Store | None,
    experiment_id: str | None,
    configs: list[RunConfig],
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT,
) -> dict[str, str]:
    """done / running / resumable / pending for each config hash, read from the store and the lock files."""
    status = {c.config_hash: "pending" for c in configs}
    if store is None or experiment_id is None:
        return status
    claims = store.claims(experiment_id, timeout=claim_timeout)
    checkpoints = store.checkpoints(experiment_id)
    runs: dict[str, list[Run]] = {}
    for run in store.search(experiment_id, s.tag_filter(s.TAG_KIND, s.KIND_RUN)):
        key = run.data.tags.get(s.TAG_CONFIG_HASH, "")
        runs.setdefault(key, []).append(run)
        if key in status and run.info.status == "FINISHED":
            status[key] = "done"
    for key, state in status.items():
        if state == "pending" and claims.is_claimed(key, runs.get(key, [])):
            status[key] = "running"
        elif state == "pending" and checkpoints.exists(key):
            status[key] = "resumable"
    return status


def print_plan(configs: list[RunConfig], status: dict[str, str], out: TextIO | None = None) -> None:
    """The expanded plan, one row per run with its seeds, hash and status (`--dry-run`)."""
    out = out or sys.stdout
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
    print(pd.DataFrame(rows).to_string(index=False), file=out)
    counts = pd.Series(list(status.values())).value_counts().to_dict()
    print(f"{len(configs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), file=out)


def run_sweep(
    study: Study,
    *,
    tracking_uri: str | None = None,
    data_root: str | Path | None = None,
    dry_run: bool = False,
    jobs: int | None = 1,
    checkpoint_every: float = 60.0,
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT,
    retry_for: float | None = None,
    out: TextIO | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run every config of a study that is not finished yet; one parent run per invocation."""
    out = out or sys.stdout
    device = resolve_device(study.device)
    configs = expand(study, device)
    if dry_run:
        try:
            store: Store | None = Store(tracking_uri, create=False, retry_for=retry_for)
        except UserError:
            store = None  # no store yet: every run is pending, and a dry run creates nothing
        exp_id = store.experiment_id(study.name, create=False) if store else None
        print_plan(configs, plan_status(store, exp_id, configs, claim_timeout), out)
        return SweepResult(exp_id, None, [], pd.DataFrame())

    _preflight(study, configs, data_root)  # before the store is touched: a bad input changes nothing
    execution = study.execution
    executor: Executor | None = None
    if execution.executor != "local":  # connect first: a cluster that cannot use this store changes nothing
        options = Options(runs_per_gpu=execution.runs_per_gpu, ray_address=execution.ray_address)
        executor = get_executor(execution.executor)(None, options)
        executor.prepare(resolve_uri(tracking_uri))
    try:
        return _sweep(
            study,
            configs,
            device,
            executor,
            tracking_uri,
            data_root,
            jobs,
            checkpoint_every,
            claim_timeout,
            retry_for,
            out,
            progress,
        )
    finally:
        if executor is not None:
            executor.close()


def _sweep(
    study: Study,
    configs: list[RunConfig],
    device: str,
    executor: Executor | None,
    tracking_uri: str | None,
    data_root: str | Path | None,
    jobs: int | None,
    checkpoint_every: float,
    claim_timeout: float,
    retry_for: float | None,
    out: TextIO,
    progress: bool,
) -> SweepResult:
    store = Store(tracking_uri, retry_for=retry_for)
    exp_id = store.experiment_id(study.name)
    tag_experiment(store, exp_id, configs)  # also for a study swept before seedvar wrote these tags
    status = plan_status(store, exp_id, configs, claim_timeout)
    pending = [c for c in configs if status[c.config_hash] in ("pending", "resumable")]
    if not pending:
        print(f"nothing to do: all {len(configs)} runs of {study.name!r} are finished or running", file=out)
        summary = summarize(finished_summaries(store, exp_id, configs))
        print_summary(summary, out)
        return SweepResult(exp_id, None, [], summary)

    if executor is None:  # local: one process, or worker processes (per GPU slot on a GPU machine)
        per_gpu = study.execution.runs_per_gpu
        gpus = torch.cuda.device_count() if device == "cuda" else 0
        n = resolve_jobs(jobs, device, study.train.threads, len(pending), per_gpu, gpus)
        executor = get_executor("pool" if n > 1 else "serial")(
            store, Options(jobs=n, runs_per_gpu=per_gpu, gpus=gpus)
        )
    sweep = SweepRecorder.start(store, exp_id, study, configs, device, claim_timeout)
    ctx = RunContext(
        tracking_uri=store.uri,
        experiment_id=exp_id,
        parent_id=sweep.run_id,
        data_root=str(data_root) if data_root else None,
        download=study.download,
        checkpoint_every=checkpoint_every,
        claim_timeout=claim_timeout,
        retry_for=retry_for,
    )
    print(
        f"{study.name}: {len(pending)} of {len(configs)} runs to do on {device}, {executor.where()} "
        f"(experiment {exp_id}, store {store.uri})",
        file=out,
    )
    outcomes: list[RunOutcome] = []
    status_final = "FINISHED"
    bars = Progress(len(pending), progress)
    found: Found = {}
    try:
        with sweep.alive():
            outcomes = executor.run(pending, ctx, bars)
        found = finished_summaries(store, exp_id, configs)
        sweep.log_summary(found)
    except KeyboardInterrupt:
        status_final = "KILLED"
        raise
    finally:
        bars.close()
        sweep.end(status_final, failed=sum(o.status == "FAILED" for o in outcomes))
    for o in outcomes:
        if o.status == "FAILED":
            print(f"FAILED {o.run_name}: {o.reason}", file=out)
    summary = summarize(found)
    print_summary(summary, out)
    return SweepResult(exp_id, sweep.run_id, outcomes, summary)


def _preflight(study: Study, configs: list[RunConfig], data_root: str | Path | None) -> None:
    """Load the first run's data of every dataset variant, build every model for it and run it once on
    zeros, before any run exists: a missing file, an impossible option or a model that cannot take this
    input fails at once instead of as N failed runs."""
    firsts: dict[str, RunConfig] = {}
    for c in configs:
        firsts.setdefault(c.variant, c)
    for cfg in firsts.values():
        try:
            task = compute.load_data(cfg, data_root=data_root, download=study.download)
        except data.DataError as exc:
            where = f" ({cfg.variant})" if cfg.variant else ""
            raise UserError(f"{study.source}: dataset{where}: {exc}") from None
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


# (model, deterministic, dataset variant, mode) -> each finished run's summary
Found = dict[tuple[str, bool, str, str], list[s.PassSummary]]


def finished_summaries(store: Store, experiment_id: str, configs: list[RunConfig]) -> Found:
    """Each finished run of this plan's logged per-mode summaries, per condition and mode, in plan
    order: what the sweep's table and its parent run's summary metrics are computed from (one query)."""
    keys = {c.config_hash for c in configs}
    modes = list(dict.fromkeys(m for c in configs for m in c.test.modes))
    found: Found = {(c.model, c.deterministic, c.variant, m): [] for c in configs for m in modes}
    for run in store.search(experiment_id, "attributes.status = 'FINISHED'"):
        tags = run.data.tags
        if tags.get(s.TAG_CONFIG_HASH) not in keys:
            continue
        model, det = tags.get(s.TAG_MODEL, "?"), tags.get(s.TAG_DETERMINISTIC) == "true"
        variant = tags.get(s.TAG_VARIANT, "")
        for mode in modes:
            summary = s.PassSummary.from_metrics(mode, run.data.metrics)
            if summary is not None and (model, det, variant, mode) in found:
                found[model, det, variant, mode].append(summary)
    return {key: runs for key, runs in found.items() if runs}


def summarize(found: Found) -> pd.DataFrame:
    """Per model and mode: runs, passes, mean, std, min, max accuracy over every pass of every run."""
    table = [
        {"model": s.condition_name(model, det, variant), "mode": mode, **asdict(s.pool(runs))}
        for (model, det, variant, mode), runs in found.items()
    ]
    return pd.DataFrame(table, columns=["model", "mode", "runs", "passes", "mean", "std", "min", "max"])


def print_summary(summary: pd.DataFrame, out: TextIO) -> None:
    """The table a sweep ends with."""
    if summary.empty:
        print("no finished runs yet", file=out)
        return
    print("\ntest accuracy (%) over every pass of every finished run", file=out)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"), file=out)
