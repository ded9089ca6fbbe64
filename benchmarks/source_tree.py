"""seedvar importable from a source tree that is not installed (the lent GPU machine, which cannot pip
install the project): a folder of symlinks laid out as the installed `seedvar` namespace, built from the
`package-dir` mapping of pyproject.toml, so it can never disagree with what a wheel holds.

    export PYTHONPATH=$(python3 benchmarks/source_tree.py /tmp/seedvar-src)
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(dest: Path) -> Path:
    """Lay out dest/seedvar/... as symlinks into the repository; returns dest (a sys.path entry)."""
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    root = dest / "seedvar"
    root.mkdir(parents=True, exist_ok=True)
    for entry in (REPO / mapping["seedvar"]).iterdir():  # the tool's own modules and subpackages
        link = root / entry.name
        if not link.exists() and entry.name != "__pycache__":
            link.symlink_to(entry)
    for package, folder in mapping.items():  # seedvar.nets -> nets/, seedvar.data -> data/, ...
        if package != "seedvar":
            link = dest / Path(*package.split("."))
            if not link.exists():
                link.symlink_to(REPO / folder)
    return dest


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/seedvar-src").resolve()))
