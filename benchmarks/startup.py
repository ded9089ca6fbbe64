"""Start-up: `seedvar --help` and a 15-row CSV report, each a fresh process, against the floor of its libraries.

`seedvar --help` builds the whole command line (every subcommand's options) and should load no science
library; its baseline is a bare interpreter (`python -c pass`). A metric report of a CSV (3 conditions x 5
seeds, `seedvar report --csv FILE --metric acc --by model`: tables, sentences, figures, HTML and Markdown)
needs pandas, scipy, matplotlib and seaborn, never MLflow's store or SQLAlchemy; its baseline is a process
that only imports those four libraries, the least any report can cost. Each command runs `--repeats` times
alternating with its baseline; medians compared (seedvar's time / the baseline's). A last line says which
heavy modules the CSV report's process loaded. Goals (2-core CPU): help < 1 s, CSV report < 3 s. CPU times (user + system) are printed
too: on a busy machine they say what the command costs when it has a core to itself.

    .venv/bin/python benchmarks/startup.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

REPORT_LIBRARIES = "import pandas, scipy.stats, matplotlib.pyplot, seaborn"
HEAVY = ("mlflow", "sqlalchemy", "torch", "scipy", "fastapi")  # what a process may load or not, by prefix
# Runs the command in this very process and, at its end, prints the heavy packages it loaded.
PROBE = """
import sys
from seedvar.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("loaded:", ",".join(sorted({{m.split(".")[0] for m in sys.modules if m.startswith({heavy!r})}})))
"""


def write_csv(path: Path) -> Path:
    """15 runs: 3 models x 5 seeds, accuracies to 4 decimals (as a results table exported elsewhere)."""
    import numpy as np

    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "seed", "acc"])
        for i, model in enumerate(("a", "b", "c")):
            for seed in range(5):
                w.writerow([model, seed, round(0.80 + 0.01 * i + 0.02 * float(rng.standard_normal()), 4)])
    return path


def seconds(cmd: Sequence[str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one fresh process, its interpreter's start included. On a
    busy machine the wall time grows with the load and the CPU time much less: both are printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(
    name: str, seedvar: Sequence[str], baseline: Sequence[str], repeats: int, cwd: Path
) -> tuple[float, float]:
    """Alternating runs, medians; prints the result line (wall times) and a line of CPU times, and returns
    seedvar's median wall and CPU seconds."""
    ours, base = [], []
    for _ in range(repeats):
        base.append(seconds(baseline, cwd))
        ours.append(seconds(seedvar, cwd))
    a, b = (statistics.median(w for w, _ in runs) for runs in (ours, base))
    a_cpu, b_cpu = (statistics.median(t for _, t in runs) for runs in (ours, base))
    print(f"{name}: seedvar {a:.2f} s, baseline {b:.2f} s, ratio {a / b:.2f}x", flush=True)
    print(f"{name}: CPU time seedvar {a_cpu:.2f} s, baseline {b_cpu:.2f} s", flush=True)
    return a, a_cpu


def main(argv: Sequence[str] | None = None) -> None:
    p = c.parser(__doc__)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, c.CpuLoad() as load:
        folder = Path(tmp)
        table = write_csv(folder / "results.csv")
        report = ["report", "--csv", str(table), "--metric", "acc", "--by", "model", "--out", "report"]
        helped = compare("startup_help", [py, "-m", "seedvar", "--help"], [py, "-c", "pass"], repeats, folder)
        reported = compare(
            "startup_csv_report",
            [py, "-m", "seedvar", *report],
            [py, "-c", REPORT_LIBRARIES],
            repeats,
            folder,
        )
        probe = PROBE.format(heavy=HEAVY)
        for what, command in (("--help", ["--help"]), ("the CSV report", report)):
            out = subprocess.run(
                [py, "-c", probe, *command], cwd=folder, check=True, capture_output=True, text=True
            ).stdout
            loaded = out.strip().splitlines()[-1].removeprefix("loaded:").strip() or "none"
            print(f"startup: {what} loaded, of {', '.join(HEAVY)}: {loaded}")
    print(
        f"startup: seedvar --help {helped[0]:.2f} s, CPU {helped[1]:.2f} s (goal < 1 s: {helped[0] < 1}); CSV "
        f"report of 15 rows {reported[0]:.2f} s, CPU {reported[1]:.2f} s (goal < 3 s: {reported[0] < 3}); {load}"
    )


if __name__ == "__main__":
    main()
