"""`seedvar sweep`: expand a study, skip what is finished, run the rest, print the summary table."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from study.errors import UserError
from study.plan import RunConfig, condition_name, expand
from study.progress import Progress
from study.runner import RunContext, RunOutcome, ignoring_interrupts, is_claimed, run_one
from study.spec import Study
from study.tracking import TAG, Store, to_json


@dataclass
class SweepResult:
    experiment_id: str | None
    parent_id: str | None
    outcomes: list[RunOutcome]
    summary: pd.DataFrame

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "FAILED"]


def resolve_device(requested: str) -> str:
    """auto -> cuda when available, else cpu; an unavailable cuda is the user's error, said plainly."""
    import torch

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
    ck_dir = store.checkpoint_dir(experiment_id)
    for run in store.search(experiment_id, f"tags.`{TAG}kind` = 'run'"):
        key = run.data.tags.get(f"{TAG}config_hash")
        if key in status and run.info.status == "FINISHED":
            status[key] = "done"
    for key, s in status.items():
        if s == "pending" and is_claimed(ck_dir / f"{key}.lock"):
            status[key] = "running"
        elif s == "pending" and (ck_dir / f"{key}.pt").exists():
            status[key] = "resumable"
    return status


def print_plan(configs: list[RunConfig], status: dict[str, str], out: Any = None) -> None:
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
    out: Any = None,
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
    status = plan_status(store, exp_id, configs)
    pending = [c for c in configs if status[c.config_hash] in ("pending", "resumable")]
    if not pending:
        print(f"nothing to do: all {len(configs)} runs of {study.name!r} are finished or running", file=out)
        summary = summarize(store, exp_id, configs)
        _print_summary(summary, out)
        return SweepResult(exp_id, None, [], summary)

    parent_id = store.start_run(
        exp_id,
        f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
        {f"{TAG}kind": "sweep", f"{TAG}spec": study.source, "mlflow.note.content": study.description},
    )
    store.log(parent_id, params=_study_params(study, device))
    spec_text = Path(study.source).read_bytes() if Path(study.source).is_file() else b""
    store.log_files(
        parent_id, {"study.toml": spec_text, "plan.json": to_json([c.to_dict() for c in configs])}
    )
    ctx = RunContext(
        store.uri, exp_id, parent_id, str(data_root) if data_root else None, study.download, checkpoint_every
    )
    print(
        f"{study.name}: {len(pending)} of {len(configs)} runs to do on {device} "
        f"(experiment {exp_id}, store {store.uri})",
        file=out,
    )
    outcomes: list[RunOutcome] = []
    status_final = "FINISHED"
    try:
        jobs = resolve_jobs(jobs, device, study.train.threads, len(pending))
        if jobs > 1:
            from study.parallel import run_parallel

            outcomes = run_parallel(pending, ctx, jobs, progress=progress)
        else:
            outcomes = _run_serial(pending, ctx, store, progress)
    except KeyboardInterrupt:
        status_final = "KILLED"
        raise
    finally:
        with ignoring_interrupts():
            store.log(parent_id, tags={f"{TAG}failed_runs": str(sum(o.status == "FAILED" for o in outcomes))})
            store.end(parent_id, status_final)
    for o in outcomes:
        if o.status == "FAILED":
            print(f"FAILED {o.run_name}: {o.reason}", file=out)
    summary = summarize(store, exp_id, configs)
    _print_summary(summary, out)
    return SweepResult(exp_id, parent_id, outcomes, summary)


def _run_serial(pending: list[RunConfig], ctx: RunContext, store: Store, progress: bool) -> list[RunOutcome]:
    outcomes = []
    bars = Progress(len(pending), progress)
    try:
        for cfg in pending:
            outcome = run_one(cfg, ctx, store, lambda kind, payload: bars.event(0, kind, payload))
            outcomes.append(outcome)
            bars.finished(outcome)
    finally:
        bars.close()
    return outcomes


def _preflight(study: Study, cfg: RunConfig, data_root: str | Path | None) -> None:
    """Load the first run's data and build every model for it before any run exists, so a missing
    file or a model that cannot take this input fails at once instead of as N failed runs."""
    import data
    import nets

    try:
        task = data.load_task(
            cfg.dataset,
            split_seed=cfg.seeds["split"],
            root=data_root,
            download=study.download,
            **cfg.dataset_options,
        )
    except data.DataError as exc:
        raise UserError(f"{study.source}: dataset: {exc}") from None
    for model in study.models:
        try:
            nets.build(model, task.num_classes, task.in_shape, **study.model_options.get(model, {}))
        except nets.ModelError as exc:
            raise UserError(
                f"{study.source}: {model} cannot train on {cfg.dataset} {task.in_shape}: {exc}"
            ) from None


def _study_params(study: Study, device: str) -> dict[str, str]:
    return {
        "study": study.name,
        "dataset": study.dataset,
        "models": ",".join(study.models),
        "device": device,
        "deterministic": ",".join(str(d).lower() for d in study.deterministic),
        "seeds.base": str(study.seeds.base),
        "seeds.replicates": str(study.seeds.replicates),
        "seeds.vary": ",".join(study.seeds.vary),
        "train.epochs": str(study.train.epochs),
        "test.modes": ",".join(study.test.modes),
        "test.passes": str(study.test.passes),
    }


def summarize(store: Store, experiment_id: str, configs: list[RunConfig]) -> pd.DataFrame:
    """Per model and mode over the finished runs of this plan: runs, passes, mean, std, min, max accuracy.

    Built from each run's logged summaries (n, mean, std, min, max of its passes), so it needs one query.
    """
    keys = {c.config_hash for c in configs}
    modes = list(dict.fromkeys(m for c in configs for m in c.test.modes))
    order = list(dict.fromkeys(condition_name(c.model, c.deterministic) for c in configs))
    rows: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for run in store.search(experiment_id, "attributes.status = 'FINISHED'"):
        tags, m = run.data.tags, run.data.metrics
        if tags.get(f"{TAG}config_hash") not in keys:
            continue
        cond = condition_name(tags.get(f"{TAG}model", "?"), tags.get(f"{TAG}deterministic") == "true")
        for mode in modes:
            if f"test.{mode}.acc_mean" in m:
                rows.setdefault((cond, mode), []).append(
                    tuple(
                        m[f"test.{mode}.{k}"] for k in ("passes", "acc_mean", "acc_std", "acc_min", "acc_max")
                    )
                )
    table = []
    for key in ((c, mode) for c in order for mode in modes if (c, mode) in rows):
        n, mean, std, lo, hi = (np.array(x, dtype=float) for x in zip(*rows[key], strict=True))
        total = n.sum()
        grand = (n * mean).sum() / total
        # pooled over every pass of every run: within-run spread plus the spread of run means
        ss = ((n - 1) * std**2).sum() + (n * (mean - grand) ** 2).sum()
        table.append(
            {
                "model": key[0],
                "mode": key[1],
                "runs": len(n),
                "passes": int(total),
                "mean": 100 * grand,
                "std": 100 * np.sqrt(ss / (total - 1)) if total > 1 else 0.0,
                "min": 100 * lo.min(),
                "max": 100 * hi.max(),
            }
        )
    return pd.DataFrame(table, columns=["model", "mode", "runs", "passes", "mean", "std", "min", "max"])


def _print_summary(summary: pd.DataFrame, out: Any) -> None:
    if summary.empty:
        print("no finished runs yet", file=out)
        return
    print("\ntest accuracy (%) over every pass of every finished run", file=out)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"), file=out)
