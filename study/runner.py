"""One run, start to finish: build under the init seed, train, test in every mode, log to MLflow.

A run holds an exclusive lock on its config hash while it works (a dead process releases it), keeps an
epoch checkpoint beside the store, and resumes from it into the same MLflow run when restarted.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from study.evaluate import pass_metrics, predict_passes
from study.plan import RunConfig
from study.seeding import pass_seeds, seeded, set_deterministic
from study.tracking import TAG, Store, device_name, environment, to_json
from study.train import EpochStats, NonFiniteLoss, Trainer, weights_sha256

Event = Callable[[str, dict[str, Any]], None]


@dataclass
class RunOutcome:
    """What the sweep needs to print: status, reason, and per-mode accuracy of each pass."""

    config_hash: str
    run_name: str
    status: str  # FINISHED | FAILED | KILLED | SKIPPED
    run_id: str | None = None
    reason: str = ""
    seconds: float = 0.0
    accuracy: dict[str, list[float]] = field(default_factory=dict)
    weights_sha256: str = ""


@dataclass(frozen=True)
class RunContext:
    """Where a run logs and reads its data; picklable so worker processes can rebuild everything."""

    tracking_uri: str
    experiment_id: str
    parent_id: str
    data_root: str | None = None
    download: bool = False
    # Seconds between epoch checkpoints: bounds both the work lost to a kill and the cost of saving.
    checkpoint_every: float = 60.0


@contextlib.contextmanager
def ignoring_interrupts() -> Iterator[None]:
    """While a stop is being recorded, a second Ctrl-C must not cut the record short."""
    try:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot reach this code anyway
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# -- claiming a config: one live owner at a time -------------------------------------------------------
@contextlib.contextmanager
def claim(lock_path: Path) -> Iterator[bool]:
    """Hold an exclusive, non-blocking lock on a config; yields False when a live process holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        yield True
    finally:
        os.close(fd)


def is_claimed(lock_path: Path) -> bool:
    """True when a live process (on this machine) is running the config."""
    if not lock_path.exists():
        return False
    with claim(lock_path) as mine:
        return not mine


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic: a kill during the write leaves the previous checkpoint intact."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    buf = io.BytesIO()
    torch.save(state, buf)
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The last epoch checkpoint, or None when there is none or it cannot be read."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return None


# -- the run --------------------------------------------------------------------------------------------
def run_one(
    cfg: RunConfig, ctx: RunContext, store: Store | None = None, on_event: Event | None = None
) -> RunOutcome:
    """Train and test one config unless it is finished or owned by a live process; never raises for a bad run."""
    store = store or Store(ctx.tracking_uri)
    emit = on_event or (lambda kind, payload: None)
    key = cfg.config_hash
    ck_dir = store.checkpoint_dir(ctx.experiment_id)
    with claim(ck_dir / f"{key}.lock") as mine:
        if not mine:
            return RunOutcome(key, cfg.run_name, "SKIPPED", reason="running in another live process")
        previous = store.search(ctx.experiment_id, f"tags.`{TAG}config_hash` = '{key}'")
        if any(r.info.status == "FINISHED" for r in previous):
            return RunOutcome(key, cfg.run_name, "SKIPPED", reason="already finished")
        ck_path = ck_dir / f"{key}.pt"
        checkpoint = load_checkpoint(ck_path)
        resumable = {r.info.run_id for r in previous}
        if checkpoint is not None and checkpoint.get("run_id") in resumable:
            run_id = checkpoint["run_id"]
            store.call(store.client.update_run, run_id, status="RUNNING")
            store.log(run_id, tags={f"{TAG}resumed_from_epoch": checkpoint["trainer"]["epoch"]})
            with contextlib.suppress(Exception):  # the reason it stopped no longer holds
                store.call(store.client.delete_tag, run_id, f"{TAG}failure")
        else:
            checkpoint = None
            for r in previous:  # left RUNNING by a process that died before any checkpoint
                if r.info.status == "RUNNING":
                    store.log(
                        r.info.run_id, tags={f"{TAG}failure": "process died before its first checkpoint"}
                    )
                    store.end(r.info.run_id, "FAILED")
            run_id = start_child(store, cfg, ctx)
        return _execute(cfg, ctx, store, run_id, ck_path, checkpoint, emit)


def start_child(store: Store, cfg: RunConfig, ctx: RunContext) -> str:
    """Create the child run with every param, the identifying tags and the resolved config."""
    tags = {
        f"{TAG}config_hash": cfg.config_hash,
        f"{TAG}model": cfg.model,
        f"{TAG}replicate": str(cfg.replicate),
        f"{TAG}varied_source": cfg.varied,
        f"{TAG}deterministic": str(cfg.deterministic).lower(),
        f"{TAG}kind": "run",
    }
    run_id = store.start_run(ctx.experiment_id, cfg.run_name, tags, parent_id=ctx.parent_id)
    env = environment()
    env_tags = {f"{TAG}{k}": v for k, v in env.items()}
    if "git_commit" in env:
        env_tags["mlflow.source.git.commit"] = env["git_commit"]
    env_tags[f"{TAG}device_name"] = device_name(cfg.device)
    store.log(run_id, params=cfg.params(), tags=env_tags)
    store.log_files(run_id, {"config.json": to_json(cfg.to_dict()), "environment.json": to_json(env)})
    return run_id


def _execute(
    cfg: RunConfig,
    ctx: RunContext,
    store: Store,
    run_id: str,
    ck_path: Path,
    checkpoint: dict[str, Any] | None,
    emit: Event,
) -> RunOutcome:
    import data
    import nets

    outcome = RunOutcome(cfg.config_hash, cfg.run_name, "RUNNING", run_id=run_id)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(cfg.train.threads)
        set_deterministic(cfg.deterministic)
        device = torch.device(cfg.device)
        task = data.load_task(
            cfg.dataset,
            split_seed=cfg.seeds["split"],
            root=ctx.data_root,
            download=ctx.download,
            device=device,
            **cfg.dataset_options,
        )
        with seeded(cfg.seeds["init"], device):
            model = nets.build(cfg.model, task.num_classes, task.in_shape, **cfg.model_options)
        model.to(device)
        trainer = Trainer(model, task, cfg.train, cfg.seeds, device)
        logged_epochs = 0
        if checkpoint is not None:
            trainer.load_state_dict(checkpoint["trainer"])
            history = store.call(store.client.get_metric_history, run_id, "train.loss")
            logged_epochs = max((m.step for m in history), default=0)
        else:
            store.log(run_id, params={f"data.{k}": v for k, v in task.info.items()})
        emit("start", {"name": cfg.run_name, "epochs": cfg.train.epochs, "epoch": trainer.epoch})
        last_checkpoint = time.monotonic()
        while trainer.epoch < cfg.train.epochs:
            ep = trainer.run_epoch()
            if ep.epoch > logged_epochs:
                store.log(run_id, _epoch_metrics(ep))
            if (
                time.monotonic() - last_checkpoint >= ctx.checkpoint_every
                or trainer.epoch == cfg.train.epochs
            ):
                save_checkpoint(ck_path, {"run_id": run_id, "trainer": trainer.state_dict()})
                last_checkpoint = time.monotonic()
            emit("epoch", {"name": cfg.run_name, "epoch": ep.epoch, "loss": ep.loss, "acc": ep.acc})
        outcome.weights_sha256 = weights_sha256(model)
        store.log(run_id, tags={f"{TAG}weights_sha256": outcome.weights_sha256})
        emit("testing", {"name": cfg.run_name})
        outcome.accuracy = _test_and_log(model, task, cfg, store, run_id)
        store.log(run_id, [("time.total_seconds", time.perf_counter() - start, 0)])
        store.end(run_id, "FINISHED")
        outcome.status = "FINISHED"
        ck_path.unlink(missing_ok=True)
    except NonFiniteLoss as exc:
        _fail(store, run_id, outcome, str(exc))
        ck_path.unlink(missing_ok=True)
    except KeyboardInterrupt:
        outcome.status, outcome.reason = "KILLED", "interrupted (Ctrl-C); rerun the sweep to resume"
        with ignoring_interrupts(), contextlib.suppress(Exception):
            store.log(run_id, tags={f"{TAG}failure": outcome.reason})
            store.end(run_id, "KILLED")
        raise
    except Exception as exc:  # a broken run must not stop the sweep: record why and go on
        _fail(store, run_id, outcome, f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
    finally:
        torch.set_num_threads(threads)
    outcome.seconds = time.perf_counter() - start
    emit("end", {"name": cfg.run_name, "outcome": outcome})
    return outcome


def _fail(store: Store, run_id: str, outcome: RunOutcome, reason: str) -> None:
    outcome.status, outcome.reason = "FAILED", reason
    with contextlib.suppress(Exception):
        store.log(run_id, tags={f"{TAG}failure": reason})
        store.end(run_id, "FAILED")


def _epoch_metrics(ep: EpochStats) -> list[tuple[str, float, int]]:
    values = {
        "loss": ep.loss,
        "acc": ep.acc,
        "seconds": ep.seconds,
        "samples_per_s": ep.samples_per_s,
        "lr": ep.lr,
    }
    return [(f"train.{k}", v, ep.epoch) for k, v in values.items()]


def flip_rate(preds: np.ndarray) -> float:
    """study.stats.flip_rate, imported only when needed: scipy.stats and statsmodels cost a second."""
    from study import stats

    return stats.flip_rate(preds)


def _test_and_log(
    model: torch.nn.Module, task: Any, cfg: RunConfig, store: Store, run_id: str
) -> dict[str, list[float]]:
    """Every requested mode: predictions of each pass, per-pass metrics (step = pass) and summaries."""
    labels = task.test.labels.cpu().numpy()
    hyperspectral = task.kind == "hyperspectral"
    metrics: list[tuple[str, float, int]] = []
    arrays: dict[str, np.ndarray] = {"labels": labels.astype(np.int16)}
    accuracy = {}
    for mode in cfg.test.modes:
        k = cfg.test.eval_passes if mode == "eval" else cfg.test.passes
        seeds = pass_seeds(cfg.seeds["test"], k)
        t0 = time.perf_counter()
        # eval passes are complete forward passes, so "eval mode is deterministic" is measured, not assumed
        preds = predict_passes(model, task.test, mode, seeds, cfg.test.batch_size, fused=mode != "eval")
        seconds = time.perf_counter() - t0
        per_pass = pass_metrics(preds, labels, task.num_classes, per_class=hyperspectral)
        for name, values in per_pass.items():
            if name == "class_acc":
                metrics += [
                    (f"test.{mode}.class_acc.{c}", v, p) for p in range(k) for c, v in enumerate(values[p])
                ]
            else:
                metrics += [(f"test.{mode}.{name}", v, p) for p, v in enumerate(values)]
        acc = per_pass["acc"]
        summary = {
            "acc_mean": acc.mean(),
            "acc_std": acc.std(ddof=1) if k > 1 else 0.0,
            "acc_min": acc.min(),
            "acc_max": acc.max(),
            "passes": k,
            "flip_rate": flip_rate(preds) if k > 1 else 0.0,
            "seconds": seconds,
        }
        metrics += [(f"test.{mode}.{name}", float(v), 0) for name, v in summary.items()]
        arrays[mode] = preds
        arrays[f"{mode}_seeds"] = np.array(seeds, dtype=np.uint32)
        accuracy[mode] = acc.tolist()
    arrays["ids"] = np.asarray(
        task.test_ids if task.test_ids is not None else np.arange(len(labels)), np.int64
    )
    if task.test_coords is not None:
        arrays["coords"] = np.asarray(task.test_coords, dtype=np.int32)
    if task.gt is not None:
        arrays["gt"] = np.asarray(task.gt, dtype=np.int16)
    arrays["class_names"] = np.array(task.class_names)
    store.log(run_id, metrics)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    store.log_files(run_id, {"predictions.npz": buf.getvalue()})
    return accuracy
