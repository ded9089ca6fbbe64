"""Seeds per hour: the same 4 HybridSN runs through seedvar.sweep with jobs=2 and with jobs=1.

Each sweep goes into its own experiment of one temporary sqlite store and is timed whole (plan, data
check, parent run, the runs, summary), as a user waits for it. The weights sha256 of every run must be
the same in both sweeps: a run's CPU thread count is part of its config, so how many runs share the
machine must not change any result. CPU: the quick study (Indian Pines, PCA 15, 11x11 windows, 1
thread per run) with 5 epochs; CUDA: the lab study with 5 epochs, both workers sharing the one GPU.

    .venv/bin/python benchmarks/sweep.py [--device cpu|cuda] [--epochs 5] [--runs 4] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument("--epochs", type=int, help="epochs per run (default 5; 1 with --quick)")
    p.add_argument("--runs", type=int, help="runs (seeds) per sweep (default 4; 2 with --quick)")
    args = p.parse_args(argv)
    device = c.device_or_exit(args.device)
    from seedvar.record.store import Store

    runs = args.runs or (2 if args.quick else 4)
    epochs = args.epochs or (1 if args.quick else 5)
    spec_name = "lab" if device.type == "cuda" else "quick"
    options = dict(c.study_spec(spec_name).dataset_options)
    if args.quick:
        options.update(train_fraction=0.05, test_per_class=8)
    overrides: dict[str, Any] = {
        "dataset": c.hsi_dataset(args.data_root, options),
        "train.epochs": epochs,
        "seeds.replicates": runs,
        "device": device.type,
    }
    if args.quick:
        overrides["test.passes"] = 2
    with tempfile.TemporaryDirectory(prefix="seedvar-bench-") as tmp:
        uri = c.new_store_uri(Path(tmp))
        Store(uri)  # open it once (WAL) before timing
        serial_spec = c.study_spec(spec_name, {**overrides, "name": "sweep-jobs1"})
        parallel_spec = c.study_spec(spec_name, {**overrides, "name": "sweep-jobs2"})
        with c.CpuLoad() as load1:
            t1, sha1, run1 = c.timed_sweep(serial_spec, uri, args.data_root, jobs=1)
        with c.CpuLoad() as load2:
            t2, sha2, run2 = c.timed_sweep(parallel_spec, uri, args.data_root, jobs=2)

    same = sha1 == sha2 and len(set(sha1.values())) == runs
    spec = serial_spec
    c.info(
        f"sweep: {runs} runs of {', '.join(spec.models)} on {spec.dataset}, {epochs} epochs, "
        f"{spec.train.threads} thread(s) per run, tests {', '.join(spec.test.modes)} K = {spec.test.passes}, "
        f"device {device}; wall jobs=2 {t2:.1f} s, jobs=1 {t1:.1f} s"
    )
    c.info(
        f"sweep: a run takes {run1:.1f} s alone, {run2:.1f} s beside another; jobs=2 spends "
        f"{t2 - runs * run2 / 2:.1f} s of its wall time outside runs (worker start-up: imports, store, data; "
        f"idle tail), jobs=1 {t1 - runs * run1:.1f} s"
    )
    c.info(
        f"sweep: steady state (run time only, start-up amortised over many runs): jobs=2 "
        f"{2 * 3600 / run2:.0f} seeds/h, jobs=1 {3600 / run1:.0f} seeds/h"
    )
    c.info(f"sweep: during jobs=1 {load1}; during jobs=2 {load2}")
    c.info(f"sweep: identical weights sha256 with jobs=2 and jobs=1: {same}")
    c.result("sweep", f"{3600 * runs / t2:.0f} seeds/h", f"{3600 * runs / t1:.0f} seeds/h", t1 / t2, digits=2)
    assert same, "jobs=2 and jobs=1 trained different weights"


if __name__ == "__main__":
    main()
