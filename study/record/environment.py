"""What a run ran on: versions and hardware that can change results, logged as tags and a JSON artifact."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import mlflow
import numpy
import torch


def environment() -> dict[str, str]:
    """Versions and hardware that can change results: logged as tags on every run."""
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "mlflow": mlflow.__version__,
        "cuda": str(torch.version.cuda),
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none",
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "threads": str(torch.get_num_threads()),
    }
    commit = git_commit()
    if commit:
        env["git_commit"] = commit
    return env


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model: what the run's numbers were computed on."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return _cpu_name()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The commit of the seedvar checkout, when it is one (an installed wheel has none)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def to_json(obj: Any) -> bytes:
    """Readable, stable JSON for the config, plan and environment artifacts."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
