"""A tiny synthetic hyperspectral study and `seedvar sweep` as a subprocess: what the tests that kill,
interrupt, race or distribute sweeps start (reliability, tracking server, Ray)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import scene_toml
from scipy import stats

from seedvar.record.reader import child_runs, latest_finished
from seedvar.record.store import Store

SPEC = """
name = "{name}"
device = "cpu"
models = ["hybridsn"]
{dataset}[train]
epochs = {epochs}
batch_size = 16
[seeds]
base = {base}
replicates = {replicates}
[test]
passes = 3
{extra}"""


def spec_text(
    name: str, *, epochs: int, replicates: int, size: int = 24, base: int = 0, extra: str = ""
) -> str:
    """The study's TOML: HybridSN on the tiny scene (`size` x `size` pixels); `extra` appends TOML, e.g. an
    [execution] table."""
    dataset = scene_toml(height=size, width=size)
    return SPEC.format(
        name=name, dataset=dataset, epochs=epochs, replicates=replicates, base=base, extra=extra
    )


def write_spec(
    path: Path, name: str, *, epochs: int, replicates: int, size: int = 24, base: int = 0, extra: str = ""
) -> Path:
    """The study at `path` (its folder created); see spec_text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec_text(name, epochs=epochs, replicates=replicates, size=size, base=base, extra=extra))
    return path


def _ctrl_c_on() -> None:
    """SIGINT raises KeyboardInterrupt in the sweep even where pytest itself runs in a background job
    (a shell starts those with SIGINT ignored, and Python keeps an inherited SIG_IGN)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_sweep(spec: Path, uri: str, *extra: str, cwd: Path | None = None) -> subprocess.Popen:
    """`seedvar sweep SPEC` on one thread per run, output unbuffered into one text pipe."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "seedvar",
        "sweep",
        str(spec),
        "--tracking-uri",
        uri,
        "--no-progress",
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ctrl_c_on,
    )


def expected_n(uri: str, name: str, half_width: float, cap: int) -> tuple[int, float]:
    """A two-stage sweep's n by Stein's formula, worked by hand from the 3 pilot runs the store holds
    (the test of the rule must not call the rule), and the pilot's seed std."""
    store = Store(uri, create=False)
    runs = latest_finished(child_runs(store, store.experiment_id(name, create=False))).values()
    pilot = [100 * r.metrics["test.eval.acc_mean"] for r in runs if r.replicate < 3]
    assert len(pilot) == 3
    s = float(np.std(pilot, ddof=1))
    return min(cap, max(3, math.ceil((stats.t.ppf(0.975, 2) * s / half_width) ** 2))), s
