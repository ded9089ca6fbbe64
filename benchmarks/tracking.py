"""Tracking cost: everything the runner logs for a 100-epoch run tested with K = 30 passes in 3 modes.

seedvar: the run recorder into a temporary MLflow sqlite store: the resume lookup (Store.search on the
config hash), RunRecorder.start (params, tags, config and environment artifacts), the data params,
100 per-epoch RunRecorder.log_epoch calls, and RunRecorder.finish (weights tag, per-pass metrics,
summaries, the predictions.npz artifact, FINISHED). Testing runs through the engine's compute.test.
Testing is real but cheap: a tiny model (centre-pixel spectrum -> linear -> dropout -> linear) on the
quick study's Indian Pines test set (8,712 patches), so passes differ as they do for HybridSN.
Baseline: the same calls with a store that records nothing, so the difference is the logging cost.
Both use the run's CPU thread count (1), as run_one does.

    .venv/bin/python benchmarks/tracking.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

PARTS = ("start", "epochs", "test", "finish")


class Tiny(nn.Module):
    """A model with HybridSN's trunk/head split that costs nothing: testing time is not what is measured."""

    def __init__(self, bands: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Linear(bands, 32)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.4), nn.Linear(32, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        centre = x.shape[-1] // 2
        return self.embed(x[:, 0, :, centre, centre])

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class NullStore:
    """Store's logging interface, recording nothing: the baseline."""

    retry_for = 120.0

    def search(self, experiment_id: str, filter_string: str = "") -> list[Any]:
        return []

    def start_run(
        self, experiment_id: str, name: str, tags: Mapping[str, str], parent_id: str | None = None
    ) -> str:
        return "null"

    def log(
        self, run_id: str, metrics: Any = (), params: Any = None, tags: Any = None, budget: Any = None
    ) -> None:
        list(metrics)  # the runner builds these lists either way

    def log_files(self, run_id: str, files: Mapping[str, bytes]) -> None:
        pass

    def log_dataset(self, run_id: str, **dataset: Any) -> None:
        pass

    def end(self, run_id: str, status: str) -> None:
        pass


def logged_run(store: Any, cfg: Any, exp: str, parent: str, task: Any, model: nn.Module) -> dict[str, float]:
    """What runner.run_one records, in its order, with the training replaced by synthetic epoch stats."""
    from seedvar.engine import compute
    from seedvar.engine.train import weights_sha256
    from seedvar.record import schema
    from seedvar.record.recorder import RunRecorder
    from seedvar.results import EpochStats, RunResult

    t = [time.perf_counter()]
    store.search(exp, schema.tag_filter(schema.TAG_CONFIG_HASH, cfg.config_hash))
    recorder = RunRecorder.start(store, cfg, exp, parent)
    recorder.log_data(cfg, task.info, task.fingerprint)
    t.append(time.perf_counter())
    epochs = []
    for e in range(1, cfg.train.epochs + 1):
        epochs.append(
            EpochStats(
                e, loss=2.0 / e, acc=1 - 1 / (e + 1), seconds=0.7, samples_per_s=2200.0, lr=cfg.train.lr
            )
        )
        recorder.log_epoch(epochs[-1])
    t.append(time.perf_counter())
    predictions, modes = compute.test(cfg, task, model)
    result = RunResult(weights_sha256(model), epochs, predictions, modes, dict(task.info), 60.0)
    t.append(time.perf_counter())
    recorder.finish(result)
    t.append(time.perf_counter())
    return {part: t[i + 1] - t[i] for i, part in enumerate(PARTS)}


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument(
        "--repeats", type=int, help="alternating baseline/seedvar pairs (default 3; 1 with --quick)"
    )
    args = p.parse_args(argv)
    c.device_or_exit(args.device)  # logging happens on the CPU whatever the device: the test runs on CPU
    from mlflow import MlflowClient

    from seedvar.engine.determinism import seeded
    from seedvar.plan import expand
    from seedvar.record import schema
    from seedvar.record.store import Store

    repeats = args.repeats or (1 if args.quick else 3)
    lab = c.study_spec("lab")
    options = dict(c.study_spec("quick").dataset_options)
    overrides = {
        "dataset": c.hsi_dataset(args.data_root, options),
        "train.epochs": 5 if args.quick else lab.train.epochs,
        "test.passes": 3 if args.quick else lab.test.passes,
        "test.eval_passes": lab.test.eval_passes,
        "test.modes": list(lab.test.modes),
        "seeds.replicates": 1,
        "device": "cpu",
    }
    if args.quick:
        overrides["dataset"]["test_per_class"] = 8
    cfg = expand(c.study_spec("quick", overrides), "cpu")[0]
    torch.set_num_threads(cfg.train.threads)  # as run_one does around training and testing
    task = c.hsi_task(args.data_root, torch.device("cpu"), cfg.dataset_options)
    with seeded(0):
        model = Tiny(task.in_shape[1], task.num_classes)

    with tempfile.TemporaryDirectory(prefix="seedvar-bench-") as tmp:
        store = Store(c.new_store_uri(Path(tmp)))  # migrations before any timing
        exp = store.experiment_id("tracking")
        parent = store.start_run(exp, "bench", {schema.TAG_KIND: schema.KIND_SWEEP})
        null = NullStore()
        logged_run(
            store, cfg, exp, parent, task, model
        )  # warm-up: MLflow's lazy imports, artifact repository
        logged_run(null, cfg, exp, parent, task, model)
        real, base = [], []
        for _ in range(repeats):
            base.append(logged_run(null, cfg, exp, parent, task, model))
            real.append(logged_run(store, cfg, exp, parent, task, model))
        client = MlflowClient(store.uri)  # inspection only: what one run holds
        run = client.get_run(
            store.search(exp, schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN))[0].info.run_id
        )
        n_metrics = sum(len(client.get_metric_history(run.info.run_id, k)) for k in run.data.metrics)
        artifacts = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id)}
        losses = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train.loss"))
        passes = client.get_metric_history(run.info.run_id, schema.test_metric("train", "acc"))
        read_back = losses == [(e, 2.0 / e) for e in range(1, cfg.train.epochs + 1)] and sorted(
            m.step for m in passes
        ) == list(range(cfg.test.passes))
        finished = run.info.status == "FINISHED" and schema.ARTIFACT_PREDICTIONS in artifacts

    def med(rows: list[dict[str, float]], part: str | None = None) -> float:
        return c.median([sum(r.values()) if part is None else r[part] for r in rows])

    c.info(
        f"tracking: {cfg.train.epochs} epochs, modes {', '.join(cfg.test.modes)}, K = {cfg.test.passes} "
        f"({cfg.test.eval_passes} eval), {len(task.test)} test samples: {n_metrics} metric values, "
        f"{len(run.data.params)} params, artifacts "
        + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sorted(artifacts.items()))
    )
    c.info(
        "tracking: median seconds per part, seedvar / nothing logged: "
        + ", ".join(f"{part} {med(real, part):.3f} / {med(base, part):.3f}" for part in PARTS)
    )
    sv, nothing = med(real), med(base)
    c.info(f"tracking: logging cost per run (seedvar - baseline) {sv - nothing:.2f} s")
    c.info(f"tracking: every epoch and test pass read back once, as logged: {read_back}")
    c.info(f"tracking: the run FINISHED with its predictions: {finished}")
    c.result("tracking", f"{sv:.2f} s", f"{nothing:.2f} s", sv / nothing)


if __name__ == "__main__":
    main()
