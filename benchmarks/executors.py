"""Executors: seeds per hour of the same sweep through `--executor ray` against the local process pool.

CPU: the quick study (Indian Pines, PCA 15, 11x11 windows, 1 thread per run) with few epochs, once with
the local pool (one worker per core; each worker pays its start-up: imports, store, data) and once as
Ray tasks on a local Ray instance sized to the machine (Ray's start and its worker start-up included),
each timed whole as a user waits for it. CUDA: mobilenet_v2 and shufflenet_v2 on CIFAR-shaped data,
`--runs-per-gpu 4` against 1 (through Ray where installed, else local workers), deterministic kernels. Every config must give the same
weights sha256 in both sweeps: the executor never changes a result.

    .venv/bin/python benchmarks/executors.py [--device cpu|cuda] [--runs 8] [--epochs 3] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def compare(
    name: str, base: tuple[str, Any, int | None], new: tuple[str, Any, int | None], uri: str, root: str
) -> None:
    """Time two sweeps of the same configs (different study names, one store); print the result line."""
    (base_label, base_spec, base_jobs), (new_label, new_spec, new_jobs) = base, new
    with c.CpuLoad() as load_b:
        t_b, sha_b, run_b = c.timed_sweep(base_spec, uri, root, base_jobs)
    with c.CpuLoad() as load_n:
        t_n, sha_n, run_n = c.timed_sweep(new_spec, uri, root, new_jobs)
    runs = len(sha_b)
    same = sha_b == sha_n
    c.info(
        f"{name}: {runs} runs of {', '.join(base_spec.models)}, {base_spec.train.epochs} epochs, on "
        f"{base_spec.device}: {new_label} {t_n:.1f} s (a run {run_n:.1f} s inside its worker), "
        f"{base_label} {t_b:.1f} s (a run {run_b:.1f} s)"
    )
    c.info(f"{name}: during {base_label} {load_b}; during {new_label} {load_n}")
    c.info(f"{name}: identical weights sha256 per config: {same}")
    c.result(
        name, f"{3600 * runs / t_n:.0f} seeds/h", f"{3600 * runs / t_b:.0f} seeds/h", t_b / t_n, digits=2
    )
    assert same, f"{new_label} and {base_label} trained different weights"


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument(
        "--runs", type=int, help="runs per sweep (default 8 on a CPU, 16 on a GPU; 2 with --quick)"
    )
    p.add_argument("--epochs", type=int, help="epochs per run (default 3; 1 with --quick)")
    args = p.parse_args(argv)
    device = c.device_or_exit(args.device)
    from seedvar.engine.executors import names

    if device.type == "cpu" and "ray" not in names():
        print("executors: ray is not installed (pip install -e '.[ray]')", file=sys.stderr)
        sys.exit(2)
    epochs = args.epochs or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="seedvar-bench-") as tmp:
        uri = c.new_store_uri(Path(tmp))
        if device.type == "cpu":
            runs = args.runs or (2 if args.quick else 8)
            options = dict(c.study_spec("quick").dataset_options)
            if args.quick:
                options.update(train_fraction=0.05, test_per_class=8)
            common = {
                "dataset": c.hsi_dataset(args.data_root, options),
                "train.epochs": epochs,
                "seeds.replicates": runs,
                "device": "cpu",
            }
            if args.quick:
                common["test.passes"] = 2
            pool = c.study_spec("quick", {**common, "name": "pool"})
            ray = c.study_spec("quick", {**common, "name": "ray", "execution.executor": "ray"})
            compare("executor_ray", ("the local pool", pool, None), ("Ray", ray, None), uri, args.data_root)
        else:
            runs = args.runs or (2 if args.quick else 16)
            common = {
                "models": ["mobilenet_v2", "shufflenet_v2"],
                "dataset": {
                    "name": "synthetic_cifar",
                    "n_train": 512 if args.quick else 10_000,
                    "n_test": 1000,
                },
                "train.epochs": epochs,
                "train.batch_size": 128,
                "seeds.replicates": runs // 2,
                "device": "cuda",
                "deterministic": True,
                # Ray where it is installed; otherwise the local executor packs runs per GPU itself
                "execution.executor": "ray" if "ray" in names() else "local",
            }
            one = c.study_spec("quick", {**common, "name": "gpu1", "execution.runs_per_gpu": 1})
            four = c.study_spec("quick", {**common, "name": "gpu4", "execution.runs_per_gpu": 4})
            compare(
                "runs_per_gpu_4",
                ("1 run per GPU", one, None),
                ("4 runs per GPU", four, None),
                uri,
                args.data_root,
            )


if __name__ == "__main__":
    main()
