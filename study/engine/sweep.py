"""`seedvar sweep`: expand a study, skip what is finished, run the rest, print the summary table."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TextIO

import pandas as pd
import torch

import data
import nets
from study.engine import compute
from study.engine.executors import get_executor
from study.engine.progress import Progress
from study.engine.runner import RunContext, RunOutcome
from study.errors import UserError
from study.plan import RunConfig, Study, expand
from study.record import schema as s
from study.record.recorder import SweepRecorder, tag_experiment
from study.record.store import Store


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


def resolve_jobs(jobs: int | None, device: str, threads: int, pending: int) -> int:
    """None = auto: on a CPU as many single-study workers as the cores allow (cores // threads per run),
    on a GPU one. Never more workers than runs."""
    if jobs is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        jobs = max(1, cores // threads) if device == "cpu" else 1
    return max(1, min(jobs, pending))


def plan_status(store: Store | None, experiment_id: str | None, configs: list[RunConfig]) -> dict[str, str]:
    """done / running / resumable / pending for each config hash, read from the store and the lock files."""
    status = {c.config_hash: "pending" for c in configs}
    if store is None or experiment_id is None:
        return status
    claims, checkpoints = store.claims(experiment_id), store.checkpoints(experiment_id)
    for run in store.search(experiment_id, s.tag_filter(s.TAG_KIND, s.KIND_RUN)):
        key = run.data.tags.get(s.TAG_CONFIG_HASH)
        if key in status and run.info.status == "FINISHED":
            status[key] = "done"
    for key, state in status.items():
        if state == "pending" and claims.is_claimed(key):
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
    out: TextIO | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run every config of a study that is not finished yet; one parent run per invocation."""
    out = out or sys.stdout
    device = resolve_device(study.device)
    configs = expand(study, device)
    if dry_run:
        try:
            store: Store | None = Store(tracking_uri, create=False)
        except UserError:
            store = None  # no store yet: every run is pending, and a dry run creates nothing
        exp_id = store.experiment_id(study.name, create=False) if store else None
        print_plan(configs, plan_status(store, exp_id, configs), out)
        return SweepResult(exp_id, None, [], pd.DataFrame())

    _preflight(study, configs[0], data_root)  # before the store is touched: a bad input changes nothing
    store = Store(tracking_uri)
    exp_id = store.experiment_id(study.name)
    tag_experiment(store, exp_id, configs)  # also for a study swept before seedvar wrote these tags
    status = plan_status(store, exp_id, configs)
    pending = [c for c in configs if status[c.config_hash] in ("pending", "resumable")]
    if not pending:
        print(f"nothing to do: all {len(configs)} runs of {study.name!r} are finished or running", file=out)
        summary = summarize(finished_summaries(store, exp_id, configs))
        print_summary(summary, out)
        return SweepResult(exp_id, None, [], summary)

    sweep = SweepRecorder.start(store, exp_id, study, configs, device)
    ctx = RunContext(
        store.uri,
        exp_id,
        sweep.run_id,
        str(data_root) if data_root else None,
        study.download,
        checkpoint_every,
    )
    print(
        f"{study.name}: {len(pending)} of {len(configs)} runs to do on {device} "
        f"(experiment {exp_id}, store {store.uri})",
        file=out,
    )
    jobs = resolve_jobs(jobs, device, study.train.threads, len(pending))
    executor = get_executor("pool" if jobs > 1 else "serial")(store, jobs)
    outcomes: list[RunOutcome] = []
    status_final = "FINISHED"
    bars = Progress(len(pending), progress)
    found: Found = {}
    try:
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


def _preflight(study: Study, cfg: RunConfig, data_root: str | Path | None) -> None:
    """Load the first run's data and build every model for it before any run exists, so a missing
    file or a model that cannot take this input fails at once instead of as N failed runs."""
    try:
        task = compute.load_data(cfg, data_root=data_root, download=study.download)
    except data.DataError as exc:
        raise UserError(f"{study.source}: dataset: {exc}") from None
    for model in study.models:
        try:
            compute.build_model(
                replace(cfg, model=model, model_options=study.model_options.get(model, {})), task
            )
        except nets.ModelError as exc:
            raise UserError(
                f"{study.source}: {model} cannot train on {cfg.dataset} {task.in_shape}: {exc}"
            ) from None


Found = dict[tuple[str, bool, str], list[s.PassSummary]]  # (model, deterministic, mode) -> per-run summaries


def finished_summaries(store: Store, experiment_id: str, configs: list[RunConfig]) -> Found:
    """Each finished run of this plan's logged per-mode summaries, per condition and mode, in plan
    order: what the sweep's table and its parent run's summary metrics are computed from (one query)."""
    keys = {c.config_hash for c in configs}
    modes = list(dict.fromkeys(m for c in configs for m in c.test.modes))
    found: Found = {(c.model, c.deterministic, m): [] for c in configs for m in modes}
    for run in store.search(experiment_id, "attributes.status = 'FINISHED'"):
        tags = run.data.tags
        if tags.get(s.TAG_CONFIG_HASH) not in keys:
            continue
        model, det = tags.get(s.TAG_MODEL, "?"), tags.get(s.TAG_DETERMINISTIC) == "true"
        for mode in modes:
            summary = s.PassSummary.from_metrics(mode, run.data.metrics)
            if summary is not None and (model, det, mode) in found:
                found[model, det, mode].append(summary)
    return {key: runs for key, runs in found.items() if runs}


def summarize(found: Found) -> pd.DataFrame:
    """Per model and mode: runs, passes, mean, std, min, max accuracy over every pass of every run."""
    table = [
        {"model": s.condition_name(model, det), "mode": mode, **asdict(s.pool(runs))}
        for (model, det, mode), runs in found.items()
    ]
    return pd.DataFrame(table, columns=["model", "mode", "runs", "passes", "mean", "std", "min", "max"])


def print_summary(summary: pd.DataFrame, out: TextIO) -> None:
    """The table a sweep ends with."""
    if summary.empty:
        print("no finished runs yet", file=out)
        return
    print("\ntest accuracy (%) over every pass of every finished run", file=out)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"), file=out)
