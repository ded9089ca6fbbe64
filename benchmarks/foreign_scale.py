"""A metric report of runs seedvar did not train, at MLflow's own scale: 10 conditions x 1,000 seeds (10,000
runs, 5 params and one metric each, written through MLflow's client as a user's script would), the
whole `seedvar report --metric` against `mlflow.search_runs` reading the same runs into a DataFrame, in one
process, on a local sqlite store and through `seedvar server` on PostgreSQL.

    .venv/bin/python benchmarks/foreign_scale.py [--conditions 10] [--seeds 1000] [--no-server] [--quick]

Goal: the whole report (reading, statistics, figures, pages) in at most the time of that search, and in
at most 30 s on 2 cores. MLflow's search builds every run whole; the report reads one metric and the
params of each run in three queries (seedvar/record/bulk.py), and through a server the same pages of
search results MLflow's own client reads, as 4 searches at once over slices of start time.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import _postgres  # noqa: E402

EXPERIMENT = "foreign"
METRIC = "val_accuracy"


def write(uri: str, conditions: int, seeds: int, writers: int) -> None:
    """conditions x seeds FINISHED runs with params model, seed, lr, batch_size, optimizer and one metric."""
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(uri)
    exp = client.create_experiment(EXPERIMENT)
    rng = np.random.default_rng(0)
    jobs = [
        (m, s, float(0.80 + 0.01 * m + rng.normal(0, 0.01))) for m in range(conditions) for s in range(seeds)
    ]

    def one(job: tuple[int, int, float]) -> None:
        m, s, value = job
        run = client.create_run(exp, run_name=f"model{m}-seed{s}")
        params = {"model": f"model{m}", "seed": s, "lr": 0.001, "batch_size": 128, "optimizer": "adam"}
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(METRIC, value, int(time.time() * 1000), 0)],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id)

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        list(pool.map(one, jobs))


def measure(uri: str, out: Path) -> tuple[float, float, int]:
    """(report seconds, search_runs seconds, runs the search returned), each timed in this process."""
    import mlflow

    import seedvar

    mlflow.set_tracking_uri(uri)
    try:
        start = time.perf_counter()
        frame = mlflow.search_runs(experiment_names=[EXPERIMENT])
        search = time.perf_counter() - start
    finally:
        mlflow.set_tracking_uri(None)
    start = time.perf_counter()
    rep = seedvar.report(EXPERIMENT, out, metric=METRIC, by="model", tracking_uri=uri)
    seconds = time.perf_counter() - start
    runs = int(rep.tables["conditions"]["runs"].sum())
    if runs != len(frame):
        raise RuntimeError(f"the report counted {runs} runs, the search {len(frame)}")
    return seconds, search, runs


def compare(name: str, uri: str, out: Path) -> None:
    """The result line of one store, and the check that both counted the same runs."""
    seconds, search, runs = measure(uri, out)
    c.result(name, f"{seconds:.2f} s", f"{search:.2f} s (mlflow.search_runs)", seconds / search, digits=2)
    print(f"{name}: the report counted {runs:,} runs, as many as the search returned")


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument("--conditions", type=int, default=10)
    p.add_argument("--seeds", type=int, default=1000)
    p.add_argument("--no-server", action="store_true", help="the local sqlite store only")
    args = p.parse_args(argv)
    conditions, seeds = (3, 20) if args.quick else (args.conditions, args.seeds)
    n = conditions * seeds
    root = Path(tempfile.mkdtemp(prefix="seedvar-foreign-"))
    try:
        uri = f"sqlite:///{root}/sqlite/mlflow.db"
        (root / "sqlite").mkdir()
        start = time.perf_counter()
        write(uri, conditions, seeds, writers=1)
        print(f"foreign: wrote {n:,} runs to sqlite in {time.perf_counter() - start:.0f} s")
        seconds, search, runs = measure(uri, root / "report-sqlite")
        c.result(
            f"foreign_{n}_sqlite",
            f"{seconds:.2f} s",
            f"{search:.2f} s (mlflow.search_runs)",
            seconds / search,
        )
        print(f"foreign_{n}_sqlite: the report counted {runs:,} runs, as many as the search returned")
        if args.no_server:
            return
        if _postgres.bin_dir() is None:
            print("foreign: PostgreSQL binaries not found; the server half is left out (install postgresql)")
            return
        with _postgres.seedvar_server(root) as url:
            start = time.perf_counter()
            write(url, conditions, seeds, writers=8)
            print(f"foreign: wrote {n:,} runs through the server in {time.perf_counter() - start:.0f} s")
            seconds, search, runs = measure(url, root / "report-server")
            c.result(
                f"foreign_{n}_server",
                f"{seconds:.2f} s",
                f"{search:.2f} s (mlflow.search_runs)",
                seconds / search,
            )
            print(f"foreign_{n}_server: the report counted {runs:,} runs, as many as the search returned")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
