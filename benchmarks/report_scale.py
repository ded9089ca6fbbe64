"""The report at the lab's study shape: 8 models x 100 replicates (800 runs) against 10 runs, on the local
sqlite store and through `seedvar server` on PostgreSQL, plus a second report after 10 new runs.

The 800-run store is built from a real small study: the quick study's HybridSN (Indian Pines, fewer
epochs; a synthetic scene with --quick) is swept for real, then each of its finished runs is cloned
through the record under new model names and replicates (every param, tag, metric history, dataset
input and the predictions), so every model has the same numbers and each clone is a faithful run. Each
report runs as `seedvar report` in its own process, as a user runs it: wall seconds and peak RSS.

    .venv/bin/python benchmarks/report_scale.py [--models 8] [--replicates 100] [--quick]
"""

from __future__ import annotations

import concurrent.futures
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

SOURCE = "scale-source"  # the real study's experiment
CLONES = "scale"  # the experiment of clones


def source_study(uri: str, data_root: str, quick: bool) -> None:
    """The real small study the clones copy: the quick study, shortened (synthetic and tiny with --quick)."""
    import io

    import seedvar

    if quick:
        spec: Any = {
            "name": SOURCE,
            "device": "cpu",
            "models": ["hybridsn"],
            "dataset": {
                "name": "synthetic_hsi",
                "height": 24,
                "width": 24,
                "bands": 20,
                "pca": 13,
                "window": 9,
            },
            "train": {"epochs": 1, "batch_size": 32},
            "seeds": {"replicates": 4},
            "test": {"passes": 3},
        }
    else:
        spec = c.study_spec("quick", {"name": SOURCE, "train.epochs": 3})
        spec.dataset_options.update(c.hsi_dataset(data_root, {}) if False else {})
    out = io.StringIO()
    res = seedvar.sweep(spec, tracking_uri=uri, data_root=data_root, out=out, progress=False)
    if res.failed:
        raise RuntimeError(f"the source study failed:\n{out.getvalue()}")


def clone_study(src_uri: str, dst_uri: str, models: int, replicates: int, threads: int = 1) -> str:
    """Copies of the source study's finished runs under `models` new model names x `replicates`
    replicates in a new experiment, with one sweep run as their parent; returns the experiment id."""
    from seedvar.record import schema as s
    from seedvar.record.reader import child_runs, latest_finished
    from seedvar.record.store import Store

    src, dst = Store(src_uri, create=False), Store(dst_uri)
    src_exp = src.experiment_id(SOURCE, create=False)
    runs = sorted(latest_finished(child_runs(src, src_exp)).values(), key=lambda r: r.replicate)
    with tempfile.TemporaryDirectory() as tmp:
        blobs = [
            Path(src.download(r.run_id, s.ARTIFACT_PREDICTIONS, Path(tmp) / r.run_id)).read_bytes()
            for r in runs
        ]
    full = [src.get_run(r.run_id) for r in runs]
    histories = [
        {key: src.call(src._client.get_metric_history, r.run_id, key) for key in r.metrics} for r in runs
    ]
    exp = dst.experiment_id(CLONES)
    parent = dst.start_run(exp, "sweep-clones", {s.TAG_KIND: s.KIND_SWEEP})
    base = runs[0].model
    jobs = [(k, rep) for k in range(1, models + 1) for rep in range(replicates)]

    def one(job: tuple[int, int]) -> None:
        k, rep = job
        i = rep % len(runs)
        run, info = runs[i], full[i]
        model = f"{base}_{k}"
        tags = {
            **{t: v for t, v in run.tags.items() if not t.startswith("mlflow.")},
            s.TAG_MODEL: model,
            s.TAG_REPLICATE: str(rep),
            s.TAG_CONFIG_HASH: uuid.uuid4().hex,
            s.TAG_NOTE: run.tags.get(s.TAG_NOTE, ""),
        }
        name = f"{model}-det-r{rep:02d}"
        run_id = dst.start_run(exp, name, tags, parent_id=parent)
        params = {**run.params, s.PARAM_MODEL: model, s.PARAM_REPLICATE: str(rep)}
        metrics = [(m.key, m.value, m.step) for hist in histories[i].values() for m in hist]
        dst.log(run_id, metrics, params=params)
        if info.inputs and info.inputs.dataset_inputs:
            dst.call(dst._client.log_inputs, run_id, datasets=list(info.inputs.dataset_inputs))
        dst.log_files(run_id, {s.ARTIFACT_PREDICTIONS: blobs[i]})
        dst.end(run_id, "FINISHED")

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, jobs))
    dst.end(parent, "FINISHED")
    return exp
