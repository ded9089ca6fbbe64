"""Runner overhead: one epoch of HybridSN through seedvar.sweeper.tracked.run_one (MLflow on) against a plain loop.

seedvar: a 1-epoch study run by run_one into a temporary sqlite store; its epoch is timed from the
runner's "start" event to its "epoch" event, so it includes the Trainer, the epoch's metrics going to
MLflow and the end-of-training checkpoint. Baseline: a plain PyTorch loop over the same batches
(task.train.batches with the same order/augment generators), same model and seeds, Adam 1e-3,
cross-entropy, same thread count and determinism flags; it must end with the same weights. The two
alternate (baseline, seedvar, baseline, ...) and the medians are compared. A last run with the
study's full test spec gives the whole-run wall time (setup, training, testing, logging) as extra
information. CPU: the quick study's data; CUDA: the lab's.

    .venv/bin/python benchmarks/overhead.py [--device cpu|cuda] [--repeats 5] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def plain_epoch(cfg: Any, task: Any, device: Any) -> tuple[float, str]:
    """The loop a lab would write, with the run's seeds; returns (seconds, weights sha256)."""
    import torch
    import torch.nn.functional as F

    from seedvar.engine import compute
    from seedvar.engine.determinism import default_generator
    from seedvar.engine.train import weights_sha256

    with compute.run_settings(cfg):
        model = compute.build_model(cfg, task, device).train()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        order = torch.Generator().manual_seed(cfg.seeds["order"])
        augment = torch.Generator().manual_seed(cfg.seeds["augment"])
        default_generator(device).manual_seed(cfg.seeds["dropout"])
        c.sync(device)
        start = time.perf_counter()
        for x, y in task.train.batches(cfg.train.batch_size, order=order, augment=augment):
            if len(y) < 2:  # as the Trainer: BatchNorm models cannot train on one sample
                continue
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        c.sync(device)
        return time.perf_counter() - start, weights_sha256(model)


def checkpoint_cost(cfg: Any, task: Any, device: Any, folder: Path) -> tuple[float, float]:
    """(median seconds, MB) of writing a Trainer's checkpoint as the runner does: part of the timed epoch
    of a 1-epoch run, since the runner always checkpoints the last epoch (and then every 60 s)."""
    from seedvar.engine import checkpoint, compute
    from seedvar.engine.train import Trainer
    from seedvar.record.checkpoint_store import LocalCheckpoints

    model = compute.build_model(cfg, task, device)
    trainer = Trainer(model, task, cfg.train, cfg.seeds, device)
    trainer.run_epoch()  # Adam's moments exist only after a step
    store = LocalCheckpoints(folder)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        store.put("bench", "bench", checkpoint.to_bytes("bench", trainer.state_dict()))
        times.append(time.perf_counter() - start)
    return c.median(times), (folder / "bench.pt").stat().st_size / 2**20


def seedvar_run(cfg: Any, store: Any, data_root: str, name: str) -> tuple[float, float, Any]:
    """run_one in a fresh experiment; returns (epoch seconds, whole-run seconds, outcome)."""
    from seedvar.record import schema
    from seedvar.sweeper.tracked import RunContext, run_one

    exp = store.experiment_id(name)
    parent = store.start_run(exp, "bench", {schema.TAG_KIND: schema.KIND_SWEEP})
    ctx = RunContext(store.uri, exp, parent, data_root)
    marks: dict[str, float] = {}

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        marks[kind] = time.perf_counter()

    start = time.perf_counter()
    outcome = run_one(cfg, ctx, store, on_event)
    wall = time.perf_counter() - start
    store.end(parent, "FINISHED")
    if outcome.status != "FINISHED":
        raise RuntimeError(f"run_one ended {outcome.status}: {outcome.reason}")
    return marks["epoch"] - marks["start"], wall, outcome


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument(
        "--repeats", type=int, help="alternating baseline/seedvar pairs (default 5; 1 with --quick)"
    )
    args = p.parse_args(argv)
    device = c.device_or_exit(args.device)
    from seedvar.engine import compute
    from seedvar.plan import expand
    from seedvar.record.store import Store

    repeats = args.repeats or (1 if args.quick else 5)
    spec_name = "lab" if device.type == "cuda" else "quick"
    options = dict(c.study_spec(spec_name).dataset_options)
    if args.quick:
        options.update(train_fraction=0.05, test_per_class=8)
    dataset = c.hsi_dataset(args.data_root, options)
    common = {"dataset": dataset, "train.epochs": 1, "seeds.replicates": 1, "device": device.type}
    # The timed runs test with one eval pass (the epoch is what is compared); the last run tests as the study does.
    light = c.study_spec(spec_name, {**common, "test.modes": ["eval"], "test.eval_passes": 1})
    full = c.study_spec(spec_name, common)
    if args.quick:
        full = c.study_spec(spec_name, {**common, "test.passes": 2})
    cfg, full_cfg = expand(light, device.type)[0], expand(full, device.type)[0]
    task = compute.load_data(cfg, data_root=args.data_root, device=device)

    with tempfile.TemporaryDirectory(prefix="seedvar-bench-") as tmp:
        store = Store(c.new_store_uri(Path(tmp)))  # migrations before any timing
        plain_epoch(cfg, task, device)  # warm-up: allocator, kernels
        seedvar_run(cfg, store, args.data_root, "warm-up")
        plain, seedvar, shas = [], [], set()
        for i in range(repeats):
            t, sha = plain_epoch(cfg, task, device)
            plain.append(t)
            shas.add(sha)
            t, _, outcome = seedvar_run(cfg, store, args.data_root, f"overhead-{i}")
            seedvar.append(t)
            shas.add(outcome.weights_sha256)
        ck_seconds, ck_mb = checkpoint_cost(cfg, task, device, Path(tmp))
        epoch, wall, outcome = seedvar_run(full_cfg, store, args.data_root, "whole-run")
        metrics = store.get_run(outcome.run_id).data.metrics
        testing = sum(metrics.get(f"test.{m}.seconds", 0.0) for m in full_cfg.test.modes)

    used = sum(len(y) for _, y in task.train.batches(cfg.train.batch_size) if len(y) >= 2)
    c.info(
        f"overhead: 1 epoch of {cfg.model} {tuple(task.in_shape)} on {task.name}, {used} of {len(task.train)} "
        f"training patches, batch {cfg.train.batch_size}, {cfg.train.threads} thread(s), device {device}; "
        f"{repeats} alternating repeats"
    )
    c.info(f"overhead: seedvar weights equal the plain loop's: {len(shas) == 1}")
    c.info(
        "overhead: epochs seedvar "
        + ", ".join(f"{t:.3f}" for t in seedvar)
        + " s; plain "
        + ", ".join(f"{t:.3f}" for t in plain)
        + f" s; ratio of minima {min(seedvar) / min(plain):.3f}"
    )
    c.info(
        f"overhead: of the seedvar epoch, the end-of-training checkpoint ({ck_mb:.1f} MiB, fsync) takes "
        f"{ck_seconds:.3f} s"
    )
    tests = ", ".join(
        f"{m} x{full_cfg.test.eval_passes if m == 'eval' else full_cfg.test.passes}"
        for m in full_cfg.test.modes
    )
    c.info(
        f"overhead_run: whole run_one (tests {tests}) {wall:.1f} s wall: epoch {epoch:.2f} s, "
        f"testing {testing:.1f} s, the rest (store, data, model, test metrics, logging) {wall - epoch - testing:.1f} s"
    )
    sv, base = c.median(seedvar), c.median(plain)
    c.result("overhead", f"{sv:.3f} s", f"{base:.3f} s", sv / base, digits=3)
    assert len(shas) == 1, "seedvar and the plain loop trained different weights"


if __name__ == "__main__":
    main()
