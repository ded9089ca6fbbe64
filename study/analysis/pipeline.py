"""The report's one pipeline, as data: a table is a function and one `Table` entry (its inputs, its
section, its figure), a section is a `Part` that writes its words, and `Tables` computes each entry once,
on first use, from the inputs a report starts with. seedvar's studies and metrics of runs it did not train
go through the same entries: each says which kinds of report it is made for (analysis.registry lists
them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from seedvar.analysis.render import Section

STUDY = "study"  # a seedvar study: its runs' predictions, every test mode
METRIC = "metric"  # one logged value per run (an MLflow experiment's metric, a CSV, a DataFrame)
KINDS = (STUDY, METRIC)


@dataclass(frozen=True)
class Plot:
    """A figure drawn from named inputs (tables or a report's inputs); None when there is nothing to draw."""

    name: str  # figures/<name>.png
    function: Callable[..., Figure | None]
    inputs: tuple[str, ...]


def nonempty(table: object) -> bool:
    """A table is shown when it has rows."""
    return not (isinstance(table, pd.DataFrame) and table.empty)


@dataclass(frozen=True)
class Table:
    """One entry: a table, or a value that tables need (the scores compared, the spread seeds are sized at).
    `function(*inputs)` computes it (each input a report's input or another entry's name); a table is shown
    under the section `part` (None: an input of others, never shown) when `shown` says so, as
    tables/<name>.csv after `view` (the columns a reader gets), with its figure when it has one."""

    name: str
    function: Callable[..., Any]
    inputs: tuple[str, ...]
    part: str | None = None
    plot: Plot | None = None
    kinds: tuple[str, ...] = KINDS
    shown: Callable[[Any], bool] = nonempty
    view: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    written: bool = True  # False: the entry feeds only its figure (curves, maps)


@dataclass(frozen=True)
class Part:
    """One section of the report, in reading order: `write(tables)` gives its words and layout (None: left
    out); the entries that name it add their tables and figures."""

    key: str
    write: Callable[[Tables], Section | None]
    kinds: tuple[str, ...] = KINDS


class Tables:
    """Every table of one report, each computed once, on first use (`t.accuracy` or `t["accuracy"]`)."""

    def __init__(self, kind: str, entries: Sequence[Table], **inputs: Any) -> None:
        self.kind = kind
        self._entries = {e.name: e for e in entries if kind in e.kinds}
        clash = sorted(set(inputs) & set(self._entries))
        if clash:
            raise ValueError(f"inputs {clash} are also names of tables: one name, one thing")
        self._values: dict[str, Any] = dict(inputs)

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            entry = self._entries.get(name)
            if entry is None:
                raise KeyError(f"no table or input {name!r} in a {self.kind} report")
            self._values[name] = entry.function(*(self[i] for i in entry.inputs))
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

    def __contains__(self, name: str) -> bool:
        return name in self._values or name in self._entries

    def entries(self) -> list[Table]:
        """The entries this kind of report computes, in the registry's order."""
        return list(self._entries.values())


def assemble(t: Tables, parts: Sequence[Part]) -> list[Section]:
    """The sections in reading order: each part's words, then the tables and figures of the entries that
    name it (a table when `shown`, its figure whenever it draws one)."""
    sections = []
    for part in parts:
        if t.kind not in part.kinds:
            continue
        sec = part.write(t)
        if sec is None:
            continue
        for entry in t.entries():
            if entry.part != part.key:
                continue
            value = t[entry.name]
            if entry.written and entry.shown(value):
                sec.tables[entry.name] = entry.view(value) if entry.view is not None else value
            if entry.plot is not None:
                fig = entry.plot.function(*(t[i] for i in entry.plot.inputs))
                if fig is not None:
                    sec.figures[entry.plot.name] = fig
        sections.append(sec)
    return sections
