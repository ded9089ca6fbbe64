"""Many writers: N processes each logging a run's worth of per-epoch metrics at once, through
`seedvar server` on PostgreSQL (seedvar) against the local sqlite store (baseline), in one run.

Each writer opens its own Store (as each sweep process or Ray worker does), creates a run and sends one
batched call per epoch (what RunRecorder.log_epoch sends: the five training metrics), then ends the run.
Printed per N: runs/s (N runs over the wall time of all of them), p50 / p99 latency of a batched call,
and errors (calls that failed after the Store's own retries). A throwaway PostgreSQL cluster is started
and removed; PostgreSQL's binaries must be installed (Debian: postgresql).

    .venv/bin/python benchmarks/writers.py [--writers 8,32] [--epochs 100] [--server-workers 4] [--quick]
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import _postgres  # noqa: E402


def writer(uri: str, experiment_id: str, epochs: int, start: float, out: multiprocessing.Queue) -> None:
    """One process: a run, one batched call per epoch, the end; (latencies, errors, finished) back."""
    from seedvar.record import schema
    from seedvar.record.store import Store
    from seedvar.results import EpochStats

    latencies, errors = [], 0
    try:
        store = Store(uri)
        while time.time() < start:  # every writer starts together
            time.sleep(0.005)
        run_id = store.start_run(experiment_id, f"writer-{os.getpid()}", {schema.TAG_KIND: schema.KIND_RUN})
        for e in range(1, epochs + 1):
            stats = EpochStats(e, 1.0 / e, 1 - 1 / (e + 1), 0.5, 1000.0, 1e-3)
            t = time.perf_counter()
            try:
                store.log(run_id, schema.epoch_metrics(stats))
            except Exception:
                errors += 1
            latencies.append(time.perf_counter() - t)
        store.end(run_id, "FINISHED")
        out.put((latencies, errors, 1))
    except Exception as exc:
        out.put((latencies, errors + 1, 0))
        print(f"writer {os.getpid()} failed: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)


def round_of(uri: str, n: int, epochs: int) -> dict[str, float]:
    """N writers against one store: wall time, runs/s, latency percentiles (ms), errors, runs finished."""
    from seedvar.record.store import Store

    store = Store(uri)
    exp = store.experiment_id(f"writers-{n}-{time.time_ns()}")
    ctx = multiprocessing.get_context("fork")  # mlflow is already imported: writers start in milliseconds
    out = ctx.Queue()
    start = time.time() + 1.0 + 0.05 * n
    procs = [ctx.Process(target=writer, args=(uri, exp, epochs, start, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=900) for _ in procs]
    wall = time.time() - start
    for p in procs:
        p.join()
    lat = np.concatenate([np.array(r[0]) for r in results if r[0]]) * 1000
    finished = sum(r[2] for r in results)
    runs = store.search(exp, "attributes.status = 'FINISHED'")
    return {
        "wall": wall,
        "runs_per_s": finished / wall,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "errors": sum(r[1] for r in results),
        "finished": len(runs),
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument("--writers", help="comma-separated N (default 8,32; 2,4 with --quick)")
    p.add_argument("--epochs", type=int, help="epochs per run (default 100; 10 with --quick)")
    p.add_argument("--server-workers", type=int, default=4, help="MLflow server worker processes (default 4)")
    args = p.parse_args(argv)
    counts = [int(v) for v in (args.writers or ("2,4" if args.quick else "8,32")).split(",")]
    epochs = args.epochs or (10 if args.quick else 100)
    if _postgres.bin_dir() is None:
        print(
            "writers: PostgreSQL binaries not found; install postgresql to run this benchmark",
            file=sys.stderr,
        )
        sys.exit(2)
    with tempfile.TemporaryDirectory(prefix="seedvar-bench-") as tmp:
        with _postgres.seedvar_server(Path(tmp), args.server_workers) as server:
            sqlite = c.new_store_uri(Path(tmp))
            for n in counts:
                base = round_of(sqlite, n, epochs)
                seedvar = round_of(server, n, epochs)
                for name, r in (("server on PostgreSQL", seedvar), ("local sqlite", base)):
                    c.info(
                        f"writers_{n}: {name}: {r['finished']}/{n} runs finished in {r['wall']:.1f} s, "
                        f"{r['runs_per_s']:.2f} runs/s, batched log call p50 {r['p50']:.0f} ms, "
                        f"p99 {r['p99']:.0f} ms, {r['errors']} errors ({epochs} epochs per run)"
                    )
                c.result(
                    f"writers_{n}",
                    f"{seedvar['runs_per_s']:.2f} runs/s, {seedvar['errors']} errors",
                    f"{base['runs_per_s']:.2f} runs/s, {base['errors']} errors",
                    seedvar["runs_per_s"] / base["runs_per_s"],
                    digits=2,
                )


if __name__ == "__main__":
    main()
