"""A tiny synthetic hyperspectral study and `seedvar sweep` as a subprocess: what the tests that kill,
interrupt, race or distribute sweeps start (reliability, tracking server, Ray)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SPEC = """
name = "{name}"
device = "cpu"
models = ["hybridsn"]
[dataset]
name = "synthetic_hsi"
height = {size}
width = {size}
bands = 20
pca = 13
window = 9
[train]
epochs = {epochs}
batch_size = 16
[seeds]
base = {base}
replicates = {replicates}
[test]
passes = 3
{extra}"""


def write_spec(
    path: Path, name: str, *, epochs: int, replicates: int, size: int = 24, base: int = 0, extra: str = ""
) -> Path:
    """The study at `path` (its folder created); `extra` appends TOML, e.g. an [execution] table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        SPEC.format(name=name, epochs=epochs, replicates=replicates, size=size, base=base, extra=extra)
    )
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
