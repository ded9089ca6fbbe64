"""The heart of the mission on CUDA: equal seeds + deterministic kernels give bit-identical weights.

For each model, trains the same config `--repeats` times with `deterministic = true` and again with
`false` (cuDNN picks its fastest, possibly nondeterministic kernels), through the engine's own
composition of a run (seedvar.engine.compute: seeding, Trainer, weights_sha256, test passes), and reports whether the weight sha256 and the eval /
train-mode predictions agree across repeats. Writes a Markdown table and JSON to --out.

    python benchmarks/gpu_check.py --device cuda --data-root ../shared/datasets --out results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

try:
    import seedvar  # noqa: F401  installed (a venv), or on PYTHONPATH
except ImportError:  # a bare source tree, as on the lent GPU machine: lay out the namespace and use it
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import source_tree  # noqa: E402

    sys.path.insert(0, str(source_tree.build(Path("/tmp/seedvar-src"))))

from seedvar.engine.determinism import prepare_cuda_env  # noqa: E402

prepare_cuda_env()  # before CUDA starts

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seedvar.engine import compute  # noqa: E402
from seedvar.engine.train import weights_sha256  # noqa: E402
from seedvar.plan import RunConfig, TestSpec, TrainSpec, run_seeds  # noqa: E402

CASES = {
    # model: (dataset, options, epochs, batch size)
    "hybridsn": ("indian_pines", {"pca": 30, "window": 25, "train_fraction": 0.3}, 3, 128),
    "mobilenet_v2": ("synthetic_cifar", {"n_train": 5000, "n_test": 1000}, 2, 128),
    "shufflenet_v2": ("synthetic_cifar", {"n_train": 5000, "n_test": 1000}, 2, 128),
    "senet18": ("synthetic_cifar", {"n_train": 5000, "n_test": 1000}, 2, 128),
    "cbam_resnet18": ("synthetic_cifar", {"n_train": 5000, "n_test": 1000}, 2, 128),
}


class _Clock(compute.Hooks):
    """Times training alone: from the built model to the end of the last epoch."""

    def started(self, task: object, epoch: int) -> None:
        self.start = time.perf_counter()

    def testing(self) -> None:
        self.seconds = time.perf_counter() - self.start


def one_run(
    model_name: str, deterministic: bool, device: torch.device, root: str | None, quick: bool
) -> dict:
    """Train and test one config exactly as a sweep's run does (without MLflow)."""
    dataset, options, epochs, batch = CASES[model_name]
    if quick:
        small = {"n_train": 256, "n_test": 64} if dataset == "synthetic_cifar" else {"pca": 15, "window": 11}
        options, epochs = {**options, **small}, 1
    cfg = RunConfig(
        study="gpu_check",
        dataset=dataset,
        dataset_options=options,
        model=model_name,
        model_options={},
        train=TrainSpec(epochs=epochs, batch_size=batch),
        test=TestSpec(modes=("eval", "train"), passes=3, eval_passes=2, batch_size=512),
        deterministic=deterministic,
        device=str(device),
        replicate=0,
        varied="all",
        seeds=run_seeds(0, 0, "all"),
    )
    clock = _Clock()
    with compute.run_settings(cfg):
        trained = compute.fit(cfg, data_root=root, hooks=clock)
        if device.type == "cuda":
            torch.cuda.synchronize()
        clock.testing()
        predictions, _ = compute.test(cfg, trained.task, trained.model)
    return {
        "sha": weights_sha256(trained.model),
        "eval": predictions.passes["eval"],
        "train": predictions.passes["train"],
        "seconds": clock.seconds,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--data-root", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", default=",".join(CASES))
    p.add_argument("--out", default="gpu_check")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke test of this script)")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA requested but not available", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    header = (
        f"GPU check on {name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version()}, {time.strftime('%Y-%m-%d')}"
    )
    print(header, flush=True)
    rows, results = [], []
    for model_name in args.models.split(","):
        for det in (True, False):
            try:
                runs = [
                    one_run(model_name, det, device, args.data_root, args.quick) for _ in range(args.repeats)
                ]
            except Exception as exc:  # e.g. an op without a deterministic CUDA kernel: report, go on
                line = f"| {model_name} | {str(det).lower()} | error: {type(exc).__name__}: {str(exc).splitlines()[0][:150]} | | | |"
                rows.append(line)
                print(line, flush=True)
                continue
            shas = {r["sha"] for r in runs}
            same_eval = all(np.array_equal(r["eval"], runs[0]["eval"]) for r in runs)
            same_train = all(np.array_equal(r["train"], runs[0]["train"]) for r in runs)
            eval_stable = all((r["eval"] == r["eval"][0]).all() for r in runs)
            secs = np.mean([r["seconds"] for r in runs[1:]] or [runs[0]["seconds"]])
            result = {
                "model": model_name,
                "deterministic": det,
                "repeats": len(runs),
                "distinct_sha256": len(shas),
                "sha256": sorted(shas),
                "same_eval_predictions": same_eval,
                "same_train_predictions": same_train,
                "eval_passes_identical": eval_stable,
                "train_seconds": float(secs),
            }
            results.append(result)
            line = (
                f"| {model_name} | {str(det).lower()} | {len(shas)} of {len(runs)} "
                f"({'identical' if len(shas) == 1 else 'differ'}) | {'yes' if same_eval else 'no'} | "
                f"{'yes' if same_train else 'no'} | {secs:.1f} |"
            )
            rows.append(line)
            print(line, flush=True)
            (out / "gpu_check.json").write_text(json.dumps({"header": header, "results": results}, indent=2))
    table = "\n".join(
        [
            header,
            "",
            "| model | deterministic | distinct weight sha256 over repeats | same eval predictions | same train-mode predictions | s/training |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    (out / "gpu_check.md").write_text(table + "\n")
    failures = [r for r in results if r["deterministic"] and r["distinct_sha256"] != 1]
    print(
        "deterministic runs bit-identical:",
        "yes" if not failures else f"NO for {[r['model'] for r in failures]}",
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
