"""The report at the lab's study shape: 8 models x 100 replicates (800 runs) against the 10 runs it was
cloned from, on the local sqlite store and through `seedvar server` on PostgreSQL, and a second report
after 10 new runs (the local run cache).

The store is built from a real small study: the quick study's HybridSN (Indian Pines, 3 epochs instead
of 40; a tiny synthetic scene with --quick) is swept for real, then each finished run is cloned through
the record under new model names and replicates: its params and tags, its latest metrics, its training
curves, its dataset input and its predictions file (the per-pass metric histories, which only the UI's
charts read, are left out). Every model then has the same numbers. Each report runs as
`seedvar report` in a process of its own, as a user runs it: wall seconds and peak resident memory.

    .venv/bin/python benchmarks/report_scale.py [--models 8] [--replicates 100] [--no-server] [--quick]
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import _postgres  # noqa: E402

SOURCE = "scale-source"  # the real study's experiment
CLONES = "scale"  # the experiment of clones
CURVES = ("train.loss", "train.acc", "train.seconds", "train.samples_per_s", "train.lr")  # full histories


def source_study(uri: str, data_root: str, quick: bool) -> None:
    """The real small study the clones copy: the quick study at 3 epochs (with --quick: 1 epoch, 3 seeds,
    5% training pixels and 8 test pixels per class)."""
    import io

    import seedvar

    options = dict(c.study_spec("quick").dataset_options)
    overrides: dict[str, Any] = {"name": SOURCE, "train.epochs": 1 if quick else 3}
    if quick:
        options.update(train_fraction=0.05, test_per_class=8)
        overrides.update({"seeds.replicates": 3, "test.passes": 2})
    spec = c.study_spec("quick", {**overrides, "dataset": c.hsi_dataset(data_root, options)})
    out = io.StringIO()
    res = seedvar.sweep(spec, tracking_uri=uri, data_root=data_root, out=out, progress=False, jobs=1)
    if res.failed or not res.outcomes:
        raise RuntimeError(f"the source study did not finish:\n{out.getvalue()}")


def read_source(uri: str) -> list[dict[str, Any]]:
    """Each finished run of the source study as what a clone needs: tags, params, metrics, inputs, file."""
    from seedvar.record import schema as s
    from seedvar.record.reader import child_runs, latest_finished
    from seedvar.record.store import Store

    store = Store(uri, create=False)
    runs = sorted(latest_finished(child_runs(store, store.experiment_id(SOURCE, create=False))).values(),
                  key=lambda r: r.replicate)  # fmt: skip
    blobs = store.read_artifacts({r.run_id: r.artifact_uri for r in runs}, s.ARTIFACT_PREDICTIONS)
    out = []
    for r in runs:
        metrics = [(k, v, 0) for k, v in r.metrics.items() if k not in CURVES]
        for key in CURVES:
            metrics += [(key, v, step) for step, v in store.metric_history(r.run_id, key)]
        inputs = store.get_run(r.run_id).inputs
        out.append(
            {
                "model": r.model,
                "tags": {k: v for k, v in r.tags.items() if not k.startswith("mlflow.") or k == s.TAG_NOTE},
                "params": r.params,
                "metrics": metrics,
                "datasets": list(inputs.dataset_inputs) if inputs else [],
                "predictions": blobs[r.run_id],
            }
        )
    return out


def clone_runs(uri: str, experiment_id: str, parent: str, source: list[dict[str, Any]],
               jobs: list[tuple[int | None, int]], threads: int) -> None:  # fmt: skip
    """Clone source[r % len(source)] as model `<model>_<k>` (its own model when k is None), replicate r,
    for each (k, r) in jobs, as children of the sweep run `parent`."""
    from seedvar.record import schema as s
    from seedvar.record.store import Store

    store = Store(uri)

    def one(job: tuple[int | None, int]) -> None:
        k, rep = job
        src = source[rep % len(source)]
        model = src["model"] if k is None else f"{src['model']}_{k}"
        tags = {
            **src["tags"],
            s.TAG_MODEL: model,
            s.TAG_REPLICATE: str(rep),
            s.TAG_CONFIG_HASH: uuid.uuid4().hex,
        }
        run_id = store.start_run(experiment_id, f"{model}-det-r{rep:02d}", tags, parent_id=parent)
        params = {**src["params"], s.PARAM_MODEL: model, s.PARAM_REPLICATE: str(rep)}
        store.log(run_id, src["metrics"], params=params)
        if src["datasets"]:
            store.call(store._client.log_inputs, run_id, datasets=src["datasets"])
        store.log_files(run_id, {s.ARTIFACT_PREDICTIONS: src["predictions"]})
        store.end(run_id, "FINISHED")

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, jobs))


def build(uri: str, experiment: str, source: list[dict[str, Any]], jobs: list[tuple[int | None, int]]) -> str:
    """Clones in an experiment, children of a new sweep run; returns the experiment's id. A local sqlite
    store takes one writer, a server 8 at once. (Not a process pool: run from tests/test_benchmarks.py
    this module is loaded by path, and spawned workers could not import it.)"""
    from seedvar.record import schema as s
    from seedvar.record.store import Store

    store = Store(uri)
    exp = store.experiment_id(experiment)
    parent = store.start_run(exp, f"sweep-{uuid.uuid4().hex[:6]}", {s.TAG_KIND: s.KIND_SWEEP})
    clone_runs(uri, exp, parent, source, jobs, 1 if store.is_local else 8)
    store.end(parent, "FINISHED")
    return exp


# `seedvar report` (the same entry point), then its own peak resident memory: VmHWM belongs to the process
# image exec started, while ru_maxrss would keep the forking benchmark's peak.
REPORT = (
    "import sys; from seedvar.cli import main; code = main(sys.argv[1:]); "
    "print('peak kB', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))); "
    "sys.exit(code)"
)


def report(uri: str, experiment: str, out: Path, cwd: Path) -> dict[str, Any]:
    """`seedvar report` in its own process: wall seconds, peak resident MB, runs read from the store, and the
    size of the page it wrote (index.html, figures inlined: what a reader downloads)."""
    cmd = [sys.executable, "-c", REPORT, "report", "--experiment", experiment, "--tracking-uri", uri]
    cmd += ["--out", str(out), "--no-log"]
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")}  # a server's run cache: here, not in ~
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"seedvar report failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
        )
    read = re.search(r"read (\d+) runs? from the store", done.stdout)
    peak = re.search(r"^peak kB (\d+)$", done.stdout, re.M)
    return {
        "seconds": seconds,
        "peak_mb": int(peak.group(1)) / 1024 if peak else float("nan"),
        "read": int(read.group(1)) if read else -1,
        "page_kb": (out / "index.html").stat().st_size / 1000,
    }


def line(r: dict[str, Any]) -> str:
    return f"{r['seconds']:.1f} s, peak {r['peak_mb']:.0f} MB, page {r['page_kb']:.0f} kB"


def measure(uri: str, root: Path, source: list[dict[str, Any]], jobs: list[tuple[int | None, int]],
            extra: list[tuple[int | None, int]], where: str, small: bool = True) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The first report of the 10 real runs' copies (unless not `small`) and of the N clones, then a
    second report of the clones after `extra` more runs were added, in one store (sqlite or a server)."""
    t0 = time.perf_counter()
    if small:
        build(uri, SOURCE, source, [(None, rep) for rep in range(len(source))])
    build(uri, CLONES, source, jobs)
    written = len(source) * small + len(jobs)
    c.info(f"report_scale: {where}: {written} runs written in {time.perf_counter() - t0:.0f} s")
    cwd = root / where
    cwd.mkdir()
    got = {"small": report(uri, SOURCE, cwd / "small", cwd)} if small else {}
    got["big"] = report(uri, CLONES, cwd / "big", cwd)
    build(uri, CLONES, source, extra)
    got["second"] = report(uri, CLONES, cwd / "second", cwd)
    for key, what in (("small", f"{len(source)} runs"), ("big", f"{len(jobs)} runs"),
                      ("second", f"second report, {len(jobs) + len(extra)} runs")):  # fmt: skip
        if key in got:
            read = got[key]["read"]
            c.info(f"report_scale: {where}, {what}: read {read} runs from the store; {line(got[key])}")
    return got


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument("--models", type=int, help="model names to clone into (default 8; 2 with --quick)")
    p.add_argument("--replicates", type=int, help="replicates per model (default 100; 3 with --quick)")
    p.add_argument("--no-server", action="store_true", help="the local sqlite store only")
    args = p.parse_args(argv)
    models = args.models or (2 if args.quick else 8)
    replicates = args.replicates or (3 if args.quick else 100)
    n = models * replicates
    jobs: list[tuple[int | None, int]] = [(k, rep) for k in range(1, models + 1) for rep in range(replicates)]
    extra: list[tuple[int | None, int]] = [(1, replicates + i) for i in range(2 if args.quick else 10)]
    server = not args.no_server and _postgres.bin_dir() is not None
    if not args.no_server and not server:
        c.info(
            "report_scale: PostgreSQL binaries not found; the server half is left out (install postgresql)"
        )
    with tempfile.TemporaryDirectory(prefix="seedvar-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        src_uri = c.new_store_uri(root / "source")
        source_study(src_uri, args.data_root, args.quick)
        source = read_source(src_uri)
        c.info(f"report_scale: the real study: {len(source)} runs swept in {time.perf_counter() - t0:.0f} s")
        local = measure(c.new_store_uri(root / "clones"), root, source, jobs, extra, "sqlite")
        small, big, second = local["small"], local["big"], local["second"]
        c.result(
            f"report_{n}_sqlite",
            line(big),
            f"{line(small)} ({len(source)} runs)",
            big["seconds"] / small["seconds"],
        )
        c.result("report_second", f"{line(second)}, read {second['read']} runs", f"{line(big)} (first report)",
                 second["seconds"] / big["seconds"], digits=2)  # fmt: skip
        if not server:
            return
        with _postgres.seedvar_server(root) as url:
            remote = measure(url, root, source, jobs, extra, "server", small=not args.quick)
            c.result(f"report_{n}_server", line(remote["big"]), f"{line(big)} (sqlite)",
                     remote["big"]["seconds"] / big["seconds"], digits=2)  # fmt: skip
            if "small" in remote:  # left out with --quick, to keep the smoke test short
                c.result(f"report_{len(source)}_server", line(remote["small"]), f"{line(small)} (sqlite)",
                         remote["small"]["seconds"] / small["seconds"], digits=2)  # fmt: skip


if __name__ == "__main__":
    main()
