"""Step 5 of the report: sections become files: index.html (self-contained), report.md, CSVs and PNGs."""

from __future__ import annotations

import base64
import html
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


@dataclass
class Section:
    """One heading of the report: paragraphs, tables (name -> DataFrame) and figures (name -> Figure)."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)


def write(out_dir: Path, title: str, sections: list[Section], formats: list[str] | tuple[str, ...]) -> None:
    """tables/*.csv (full precision), figures/*.png, and the requested pages."""
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
        (out_dir / "report.md").write_text(render_markdown(title, sections))
    if "html" in formats:
        (out_dir / "index.html").write_text(render_html(title, sections, images))


def _fmt(df: pd.DataFrame) -> pd.DataFrame:
    return df.map(
        lambda v: (
            f"{v:.3g}"
            if isinstance(v, float) and abs(v) < 0.01 and v != 0
            else (f"{v:.2f}" if isinstance(v, float) else v)
        )
    )


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [
        f"# {title}",
        "",
        f"_Generated {time.strftime('%Y-%m-%d %H:%M')} by seedvar from MLflow runs._",
        "",
    ]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        for t in sec.text:
            lines += [t, ""]
        for name, df in sec.tables.items():
            lines += [_fmt(df).to_markdown(index=False), "", f"(tables/{name}.csv)", ""]
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
        for t in sec.text:
            out.append(f"<p{' class=answer' if i == 0 else ''}>{html.escape(t)}</p>")
        for name, df in sec.tables.items():
            out.append(
                f"<div class='table' id='table-{name}'>{_fmt(df).to_html(index=False, escape=True)}</div>"
            )
        for name in sec.figures:
            data = base64.b64encode(images[name]).decode()
            out.append(
                f"<figure id='figure-{name}'><img alt='{name}' src='data:image/png;base64,{data}'></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)
