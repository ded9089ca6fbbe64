"""Helpers shared by the benchmark scripts: arguments, device check, datasets, stores, result lines.

Every benchmark measures seedvar and its baseline in the same process, because this machine is shared
and timings drift by tens of percent between runs; only the ratio of the two is comparable over time.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

# Benchmarks measure seedvar, not MLflow's usage telemetry (a background thread that calls its servers).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "datasets"
STUDIES = REPO / "studies"
T = TypeVar("T")

# Indian Pines' size, for the synthetic stand-in when the real scene is absent.
INDIAN_PINES_SIZE = {"height": 145, "width": 145, "bands": 200, "num_classes": 16}


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every benchmark takes: --data-root, --device, --quick."""
    p = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="folder of the real datasets")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs, not a measurement")
    return p


def device_or_exit(name: str) -> Any:
    """torch.device(name); CUDA asked for on a machine without it ends the script with one line, exit 2."""
    from seedvar.engine.determinism import prepare_cuda_env

    prepare_cuda_env()  # cuBLAS reads its workspace setting when CUDA starts
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        print("CUDA requested (--device cuda) but torch.cuda.is_available() is False here", file=sys.stderr)
        sys.exit(2)
    return torch.device(name)


def sync(device: Any) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: Any) -> tuple[float, T]:
    """Seconds that fn takes (GPU work included) and its result."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def study_spec(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """A ready study from studies/ (quick, lab), with dotted overrides: the settings users actually run."""
    from seedvar.plan import load_study

    return load_study(STUDIES / f"{name}.toml", overrides)


def hsi_task(data_root: str | None, device: Any, options: dict[str, Any], split_seed: int = 0) -> Any:
    """Indian Pines with these options; a synthetic scene of the same size when the files are absent."""
    import seedvar.data as data

    try:
        return data.load_task("indian_pines", split_seed=split_seed, root=data_root, device=device, **options)
    except data.DataError as e:
        print(f"({e}; using a synthetic scene of the same size)")
        return data.load_task(
            "synthetic_hsi", split_seed=split_seed, device=device, **options, **INDIAN_PINES_SIZE
        )


def hsi_dataset(data_root: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """A study's [dataset] table: indian_pines when it loads from data_root, else synthetic_hsi."""
    import seedvar.data as data

    try:
        data.load_task("indian_pines", split_seed=0, root=data_root, **options)
        return {"name": "indian_pines", **options}
    except data.DataError as e:
        print(f"({e}; using a synthetic scene of the same size)")
        return {"name": "synthetic_hsi", **options, **INDIAN_PINES_SIZE}


_TEMPLATE: list[Path] = []


def new_store_uri(folder: Path) -> str:
    """An empty MLflow sqlite store in folder. Migrations take seconds, so they run once per process
    into a template that later stores copy (the test suite's conftest does the same)."""
    from seedvar.record.store import Store

    if not _TEMPLATE:
        folder_ = tempfile.mkdtemp(prefix="seedvar-bench-template-")
        atexit.register(shutil.rmtree, folder_, ignore_errors=True)
        tmpl = Path(folder_) / "mlflow.db"
        Store(f"sqlite:///{tmpl}")
        _TEMPLATE.append(tmpl)
    (folder / "mlruns").mkdir(parents=True, exist_ok=True)
    shutil.copy(_TEMPLATE[0], folder / "mlruns" / "mlflow.db")
    return f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def result(name: str, seedvar: str, baseline: str, ratio: float, digits: int = 1, suffix: str = "x") -> str:
    """The line run_all collects: `name: seedvar X, baseline Y, ratio R` (X and Y with their units)."""
    line = f"{name}: seedvar {seedvar}, baseline {baseline}, ratio {ratio:.{digits}f}{suffix}"
    print(line, flush=True)
    return line


def info(line: str) -> None:
    """A detail line (not a result): printed as is, listed under the table by run_all."""
    print(line, flush=True)


def _cpu_ticks() -> tuple[float, float]:
    """(busy, total) seconds of CPU time of the whole machine so far, from /proc/stat."""
    import os

    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / hz, sum(fields) / hz


def _own_cpu() -> float:
    """CPU seconds of this process and its finished children (spawned workers included once joined)."""
    import resource

    return sum(
        r.ru_utime + r.ru_stime
        for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


class CpuLoad:
    """How many cores other processes kept busy while a benchmark ran: a shared machine's noise, measured.

    Linux only (reads /proc/stat); `others` is None elsewhere.
    """

    def __enter__(self) -> CpuLoad:
        self.others: float | None = None
        self.ours: float | None = None
        try:
            self._start = (*_cpu_ticks(), _own_cpu(), time.perf_counter())
        except (OSError, ValueError):
            self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._start is None:
            return
        busy0, _, own0, t0 = self._start
        busy1, _, own1 = (*_cpu_ticks(), _own_cpu())
        wall = max(time.perf_counter() - t0, 1e-9)
        self.ours = (own1 - own0) / wall
        self.others = max(0.0, (busy1 - busy0) / wall - self.ours)

    def __str__(self) -> str:
        if self.others is None:
            return "cpu load unknown"
        return f"this benchmark used {self.ours:.2f} cores, other processes {self.others:.2f}"


def timed_sweep(
    spec: Any, uri: str, data_root: str | None, jobs: int | None = None
) -> tuple[float, dict[str, str], float]:
    """(seconds, weights sha256 by config hash, mean seconds of a run inside its worker) of one whole
    sweep through seedvar.sweep, as a user waits for it; every run must finish."""
    import io

    import seedvar

    out = io.StringIO()
    start = time.perf_counter()
    res = seedvar.sweep(spec, tracking_uri=uri, data_root=data_root, jobs=jobs, out=out, progress=False)
    seconds = time.perf_counter() - start
    if res.failed or len(res.outcomes) != len(spec.models) * spec.seeds.replicates * len(spec.deterministic):
        raise RuntimeError(f"sweep {spec.name} did not finish every run:\n{out.getvalue()}")
    shas = {o.config_hash: o.weights_sha256 for o in res.outcomes}
    return seconds, shas, sum(o.seconds for o in res.outcomes) / len(res.outcomes)
