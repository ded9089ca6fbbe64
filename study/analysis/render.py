"""Step 5 of the report: sections become files: index.html (self-contained), report.md, CSVs and PNGs."""

from __future__ import annotations

import base64
import html
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


@dataclass
class Section:
    """One heading of the report: paragraphs, tables (name -> DataFrame) and figures (name -> Figure)."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    tables_first: bool = False  # the tables open the section (the answer's table of conditions)
    whole: bool = False  # tables are never split into parts, however many columns they have
    digits: int | None = None  # significant digits of its tables' numbers (a metric in its own units)


def write(
    out_dir: Path,
    title: str,
    sections: list[Section],
    formats: list[str] | tuple[str, ...],
    source: str = "MLflow runs",
) -> None:
    """tables/*.csv (full precision), figures/*.png, and the requested pages, which name their `source`."""
    import matplotlib.pyplot as plt

    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    images: dict[str, bytes] = {}
    for sec in sections:
        for name, df in sec.tables.items():
            df.to_csv(out_dir / "tables" / f"{name}.csv", index=False)
        for name, fig in sec.figures.items():
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110)
            plt.close(fig)
            images[name] = buf.getvalue()
            (out_dir / "figures" / f"{name}.png").write_bytes(images[name])
    if "md" in formats:
        (out_dir / "report.md").write_text(render_markdown(title, sections, source))
    if "html" in formats:
        (out_dir / "index.html").write_text(render_html(title, sections, images))


def close_figures(sections: list[Section]) -> None:
    """Free the figures of sections that are not written (a report built only for its tables)."""
    import matplotlib.pyplot as plt

    for sec in sections:
        for fig in sec.figures.values():
            plt.close(fig)


MAX_COLUMNS = 10  # wider tables are split (or transposed when short) so a page fits a screen
DASH = "–"


def _number(v: float, decimals: int, digits: int | None = None) -> str:
    if not np.isfinite(v):
        return DASH
    if digits and decimals:  # a metric in its own units: as many significant digits as asked
        return f"{v:.{digits}g}"
    if decimals and v != 0 and abs(v) < 1:  # 0.88, 0.036, 0.0093: two significant digits
        return f"{v:.2g}"
    return f"{v:.{decimals}f}"


def _column(values: pd.Series, digits: int | None = None) -> pd.Series:
    """One column, rounded for reading: integral floats as integers, others to 2 decimals (2 significant
    digits below 1), booleans as yes/no, numbers held in strings (MLflow params) to 4 digits."""
    if values.dtype == bool:
        return values.map({True: "yes", False: "no"})
    if pd.api.types.is_numeric_dtype(values):
        finite = values[np.isfinite(values.astype(float))]
        integral = bool(len(finite)) and bool(np.all(finite == np.round(finite)))
        return values.map(lambda v: DASH if pd.isna(v) else _number(float(v), 0 if integral else 2, digits))
    return values.map(_text_cell)


def _text_cell(v: object) -> object:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return _number(v, 2)
    if isinstance(v, str) and any(ch in v for ch in ".e"):  # "0.9801756259006866" or a list of them
        parts = v.split(", ")
        try:
            return ", ".join(f"{float(p):.4g}" if len(p) > 7 else p for p in parts)
        except ValueError:
            return v
    return v


def display(
    df: pd.DataFrame, max_columns: int = MAX_COLUMNS, digits: int | None = None
) -> list[pd.DataFrame]:
    """A table as a reader sees it: no (low, high) tuples, each `x_ci_low`/`x_ci_high` pair as one
    `x 95% CI` column, rounded, and split into tables of at most MAX_COLUMNS columns (the leading text
    columns repeated in each) or transposed when it has few rows. The CSV keeps every digit."""
    df = df[[c for c in df.columns if not df[c].map(lambda v: isinstance(v, tuple)).any()]]
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        if col.endswith("ci_high") and col.replace("ci_high", "ci_low") in df.columns:
            continue
        if col.endswith("ci_low") and (high := col.replace("ci_low", "ci_high")) in df.columns:
            base = col[: -len("ci_low")].rstrip("_")
            lo, hi = _column(df[col], digits), _column(df[high], digits)
            out[f"{base} 95% CI".strip()] = [
                DASH if a == DASH or b == DASH else f"{a} to {b}" for a, b in zip(lo, hi, strict=True)
            ]
        else:
            out[col] = _column(df[col], digits)
    if out.shape[1] <= max_columns:
        return [out]
    keys = []
    for col in df.columns[:3]:
        if not pd.api.types.is_numeric_dtype(df[col]) and df[col].dtype != bool:
            keys.append(col)
        else:
            break
    if len(out) <= 2 and keys:  # one row per condition: a column per condition reads better
        t = out.set_index(keys).T
        t.columns = [c if isinstance(c, str) else ", ".join(map(str, c)) for c in t.columns]
        return [t.rename_axis("").reset_index()]
    rest = [c for c in out.columns if c not in keys]
    chunks = math.ceil(len(rest) / max(1, MAX_COLUMNS - len(keys)))
    width = math.ceil(len(rest) / chunks)  # balanced: no table of one lonely column
    return [out[keys + rest[i : i + width]] for i in range(0, len(rest), width)]


def _width(sec: Section) -> int:
    return 10**6 if sec.whole else MAX_COLUMNS


def render_markdown(title: str, sections: list[Section], source: str = "MLflow runs") -> str:
    lines = [
        f"# {title}",
        "",
        f"_Generated {time.strftime('%Y-%m-%d %H:%M')} by seedvar from {source}._",
        "",
    ]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        text = [line for t in sec.text for line in (t, "")]
        tables = []
        for name, df in sec.tables.items():
            for part in display(df, _width(sec), sec.digits):
                tables += [part.to_markdown(index=False, disable_numparse=True), ""]
            tables += [f"(tables/{name}.csv)", ""]
        lines += tables + text if sec.tables_first else text + tables
        for name in sec.figures:
            lines += [f"![{name}](figures/{name}.png)", ""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
p.answer{font-size:1.15em;background:#f6f8fa;border-left:4px solid #4C72B0;padding:.6em 1em}"""


def render_html(title: str, sections: list[Section], images: dict[str, bytes]) -> str:
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    for i, sec in enumerate(sections):
        out.append(f"<h2>{html.escape(sec.title)}</h2>")
        text = [f"<p{' class=answer' if i == 0 else ''}>{html.escape(t)}</p>" for t in sec.text]
        tables = []
        for name, df in sec.tables.items():
            parts = "".join(
                part.to_html(index=False, escape=True) for part in display(df, _width(sec), sec.digits)
            )
            tables.append(f"<div class='table' id='table-{name}'>{parts}</div>")
        out += tables + text if sec.tables_first else text + tables
        for name in sec.figures:
            data = base64.b64encode(images[name]).decode()
            out.append(
                f"<figure id='figure-{name}'><img alt='{name}' src='data:image/png;base64,{data}'></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)
