"""Ready study specs travel with the package (`seedvar.studies`): found by name from any folder.

`seedvar sweep quick` runs the installed quick.toml; a path (`studies/quick.toml`, `my.toml`) always
wins over a ready study of the same name, so a user's own file is never shadowed.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from dataclasses import dataclass
from pathlib import Path

from seedvar.errors import UserError

PACKAGE = "seedvar.studies"  # a string, not an import: the specs are data


@dataclass(frozen=True)
class ReadyStudy:
    """One ready spec: its name (file stem), where it is, and what its header says."""

    name: str
    path: Path
    description: str
    runs_on: str


def folder() -> Path:
    """The folder of the installed ready specs."""
    return Path(str(importlib.resources.files(PACKAGE)))


def ready_studies() -> list[ReadyStudy]:
    """Every ready spec, by name; a spec that does not parse is listed with the reason as its description."""
    out = []
    for path in sorted(folder().glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text())
            description, runs_on = str(raw.get("description", "")), str(raw.get("runs_on", ""))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            description, runs_on = f"(unreadable: {exc})", ""
        out.append(ReadyStudy(path.stem, path, description, runs_on))
    return out


def locate(spec: str | Path) -> Path:
    """The spec file a user means: an existing path as given, else the ready study of that name."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    name = path.name.removesuffix(".toml")
    ready = {r.name: r.path for r in ready_studies()}
    if path.parent == Path(".") and name in ready:
        return ready[name]
    if path.exists():
        raise UserError(f"{path}: is not a file; pass a study spec (TOML) or a ready study's name")
    raise UserError(
        f"{spec}: no such study spec, and no ready study of that name (ready: {', '.join(ready) or 'none'}; "
        "`seedvar studies` lists them)"
    )
