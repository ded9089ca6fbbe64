"""K-pass test: K = 30 train-mode passes of HybridSN, trunk once per batch (fused) against 30 full passes.

Both sides call seedvar.engine.evaluate.predict_passes on the same freshly initialised model (fixed init seed,
train mode, so dropout is active) with the same pass seeds; only `fused` differs, and the predictions
must be identical. CPU: the quick study's data (Indian Pines, PCA 15, 11x11 windows, all test
patches), plus the lab's data (PCA 30, 25x25) on a small subset of test patches, with 1 thread as a
run tests (train.threads = 1 by default; 2 threads on 2 cores run 2-3x slower, not faster, whenever
another process is busy). CUDA: the lab's data.

    .venv/bin/python benchmarks/kpass.py [--device cpu|cuda] [--data-root ../shared/datasets] [--quick]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def measure(name: str, task: Any, passes: int, batch_size: int, device: Any) -> None:
    """Time fused, full, fused again (the mean of the two fused runs brackets the full one in time)."""
    import numpy as np
    import torch

    import seedvar.nets as nets
    from seedvar.engine.determinism import seeded
    from seedvar.engine.evaluate import predict_passes
    from seedvar.plan import pass_seeds, source_seed

    with seeded(source_seed(0, "init", 0), device):
        model = nets.build("hybridsn", task.num_classes, task.in_shape).to(device)
    seeds = pass_seeds(source_seed(0, "test", 0), passes)

    def run(fused: bool) -> Any:
        return predict_passes(model, task.test, "train", seeds, batch_size, fused=fused)

    predict_passes(model, task.test, "train", seeds[:1], batch_size, fused=False)  # warm-up
    t_fused1, fused1 = c.timed(lambda: run(True), device)
    t_full, full = c.timed(lambda: run(False), device)
    t_fused2, fused2 = c.timed(lambda: run(True), device)
    identical = bool(np.array_equal(fused1, full) and np.array_equal(fused2, full))
    flips = float((full != full[:1]).any(axis=0).mean())
    c.info(
        f"{name}: {len(task.test)} test patches {tuple(task.in_shape)}, K = {passes} train-mode passes, "
        f"batch {batch_size}, device {device}, {torch.get_num_threads()} CPU thread(s); "
        f"{flips:.1%} of patches change class across passes (untrained model)"
    )
    c.info(f"{name}: identical predictions: {identical}")
    seedvar = (t_fused1 + t_fused2) / 2
    c.result(name, f"{seedvar:.2f} s", f"{t_full:.1f} s", t_full / seedvar)
    assert identical, "fused passes differ from full passes"


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument("--passes", type=int, help="K (default 30, the lab's; 3 with --quick)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1, as runs test)")
    args = p.parse_args(argv)
    device = c.device_or_exit(args.device)
    import torch

    torch.set_num_threads(args.threads)
    from seedvar.engine.determinism import set_deterministic

    set_deterministic(True)  # as the studies run; also keeps cuDNN from picking other kernels per call
    quick, lab = c.study_spec("quick"), c.study_spec("lab")
    passes = args.passes or (3 if args.quick else lab.test.passes)
    with c.CpuLoad() as load:
        if device.type == "cuda":
            task = c.hsi_task(args.data_root, device, dict(lab.dataset_options))
            measure("k_pass", task, passes, lab.test.batch_size, device)
        else:
            options = dict(quick.dataset_options)
            if args.quick:
                options["test_per_class"] = 4
            task = c.hsi_task(args.data_root, device, options)
            measure("k_pass", task, passes, quick.test.batch_size, device)
            # The lab's 30x25x25 patches cost ~100x more per sample on a CPU: a few per class only.
            subset = {**lab.dataset_options, "test_per_class": 1 if args.quick else 2}
            task = c.hsi_task(args.data_root, device, subset)
            measure("k_pass_lab_subset", task, passes, lab.test.batch_size, device)
    c.info(f"k_pass: {load}")


if __name__ == "__main__":
    main()
