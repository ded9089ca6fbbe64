"""Step 5 of the report: sections become files: index.html (self-contained), report.md, CSVs and PNGs."""

from __future__ import annotations

import base64
import html
import io
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


@dataclass(frozen=True)
class Bullet:
    """One number of the answer at a glance: what it is, its value with its interval, the table it is from
    (the page links the value to that table)."""

    label: str  # "dropout's share of train-mode variance"
    value: str  # "1% (95% CI 0-2%)"
    table: str  # a table's name: the link goes to #table-<name>


@dataclass
class Section:
    """One heading of the report: paragraphs, tables (name -> DataFrame) and figures (name -> Figure).

    The glance (a section with a `headline`) opens the page: the headline, at most MAX_BULLETS numbers and
    the one figure that shows them, side by side. What a reader needs only now and then is one click away:
    `folded` puts the whole section in a <details>, `fold_tables` its tables and its `details` text."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    tables_first: bool = False  # the tables open the section (the answer's table of conditions)
    whole: bool = False  # tables are never split into parts, however many columns they have
    digits: int | None = None  # significant digits of its tables' numbers (a metric in its own units)
    headline: str = ""  # the glance: one sentence, then `bullets` beside `figures`
    bullets: list[Bullet] = field(default_factory=list)
    answer: bool = False  # the answer's paragraphs (the long form, one section below the glance)
    folded: bool = False  # the whole section folded: settings, run lists
    fold_tables: bool = False  # the tables (and `details`) folded: a section with nothing to report
    details: list[str] = field(default_factory=list)  # how the folded table is computed

    @property
    def anchor(self) -> str:
        return "sec-" + re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


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
    alts: dict[str, str] = {}
    for sec in sections:
        for name, df in sec.tables.items():
            df.to_csv(out_dir / "tables" / f"{name}.csv", index=False)
        for name, fig in sec.figures.items():
            alts[name] = alt_text(fig)
            images[name] = png(fig)
            plt.close(fig)
            (out_dir / "figures" / f"{name}.png").write_bytes(images[name])
    if "md" in formats:
        (out_dir / "report.md").write_text(render_markdown(title, sections, source, alts))
    if "html" in formats:
        (out_dir / "index.html").write_text(render_html(title, sections, images, alts))


DPI = 110
PAD_INCHES = 0.12  # white margin kept around every figure: nothing drawn touches its edge


def png(fig: Figure) -> bytes:
    """The figure as a PNG cut to its ink plus a white margin of PAD_INCHES, in 256 colours: plots have
    few, and a palette PNG is about a third of the size (1,320 x 480 pixels: 90 kB -> 27 kB). Drawn once
    and cropped by its pixels (get_tightbbox, which bbox_inches="tight" calls, cost as much as the
    drawing); only a figure whose ink touches its canvas's edge, a title or label that may run past it,
    is drawn again by savefig on a canvas grown to hold all of it, so nothing is clipped."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    if not isinstance(fig.canvas, FigureCanvasAgg):  # a bare Figure() (the claims' figure): draw with Agg
        FigureCanvasAgg(fig)
    fig.set_dpi(DPI)
    fig.canvas.draw()
    w, h = fig.canvas.get_width_height()
    drawn = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    ink = (drawn != 255).any(axis=2)  # the figures' background is white
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    pad = round(PAD_INCHES * DPI)
    if len(rows) and (rows[0] == 0 or cols[0] == 0 or rows[-1] == h - 1 or cols[-1] == w - 1):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES, facecolor="white")
        image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    elif len(rows):
        top, left = int(rows[0]), int(cols[0])
        cropped = Image.fromarray(drawn[top : rows[-1] + 1, left : cols[-1] + 1])
        image = Image.new("RGB", (cropped.width + 2 * pad, cropped.height + 2 * pad), "white")
        image.paste(cropped, (pad, pad))
    else:  # nothing drawn
        image = Image.new("RGB", (w, h), "white")
    out = io.BytesIO()
    quantized = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    palette = quantized.getpalette() or []
    # the octree averages near-white pixels into (254, 254, 254): the background stays pure white
    quantized.putpalette(
        [
            255 if all(c >= 250 for c in palette[i - i % 3 : i - i % 3 + 3]) else v
            for i, v in enumerate(palette)
        ]
    )
    quantized.save(out, format="PNG")
    return out.getvalue()


def alt_text(fig: Figure) -> str:
    """What a figure shows, in words read off the figure itself: its title, each panel's title, axes and
    categories (the first few), and the legend, so the alt text never drifts from the picture."""
    said: list[str] = []
    if fig._suptitle is not None and fig._suptitle.get_text():  # noqa: SLF001 (matplotlib has no getter)
        said.append(fig._suptitle.get_text().replace("\n", " "))  # noqa: SLF001
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    for ax in panels[:4]:
        parts = []
        if ax.get_title():
            parts.append(ax.get_title().replace("\n", " "))
        for axis, label in (("y", ax.get_ylabel()), ("x", ax.get_xlabel())):
            ticks = [t.get_text() for t in getattr(ax, f"get_{axis}ticklabels")() if t.get_text()]
            words = [t for t in ticks if not re.fullmatch(r"[-−+\d.,%e ]+", t)]
            if label or words:
                shown = ", ".join(words[:8]) + (f" and {len(words) - 8} more" if len(words) > 8 else "")
                many = f"{len(words)} categories: {shown}" if len(words) > 1 else shown
                if label and words:
                    parts.append(f"{axis}: {label} ({many})")
                else:
                    parts.append(f"{axis}: {label or many}")
        if parts:
            said.append("; ".join(parts))
    if len(panels) > 4:
        said.append(f"{len(panels) - 4} more panels alike")
    legends = [*fig.legends, *(ax.get_legend() for ax in panels if ax.get_legend() is not None)]
    for legend in legends:
        labels = [t.get_text() for t in legend.get_texts()]
        if labels:
            said.append("legend: " + ", ".join(labels[:10]) + (" ..." if len(labels) > 10 else ""))
    return ". ".join(said) + "." if said else "figure"


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
    df: pd.DataFrame, max_columns: int = MAX_COLUMNS, digits: int | None = None, split: bool = True
) -> list[pd.DataFrame]:
    """A table as a reader sees it: no (low, high) tuples, each `x_ci_low`/`x_ci_high` pair as one
    `x 95% CI` column, rounded, and split into tables of at most MAX_COLUMNS columns (the leading text
    columns repeated in each) or transposed when it has few rows. With `split` False a wide table stays
    whole (the page scrolls it inside its box) unless it is transposed. The CSV keeps every digit."""
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
    if not split:
        return [out]
    rest = [c for c in out.columns if c not in keys]
    chunks = math.ceil(len(rest) / max(1, MAX_COLUMNS - len(keys)))
    width = math.ceil(len(rest) / chunks)  # balanced: no table of one lonely column
    return [out[keys + rest[i : i + width]] for i in range(0, len(rest), width)]


def _width(sec: Section) -> int:
    return 10**6 if sec.whole else MAX_COLUMNS


def _shown(sec: Section, df: pd.DataFrame) -> pd.DataFrame:
    """The one table a page shows for a DataFrame: rounded, transposed when short and wide, never split."""
    (part,) = display(df, _width(sec), sec.digits, split=False)
    return part


def _glance(sections: list[Section]) -> Section | None:
    return next((sec for sec in sections if sec.headline), None)


def _md_alt(alts: dict[str, str], name: str) -> str:
    return alts.get(name, name).replace("[", "(").replace("]", ")")


def _bullet_md(b: Bullet) -> str:
    return f"- {b.label}: [{b.value}](#table-{b.table})"


def render_markdown(
    title: str, sections: list[Section], source: str = "MLflow runs", alts: dict[str, str] | None = None
) -> str:
    """report.md in the page's order: the glance (headline, numbers, their figure), the contents, then
    each section; folded parts come after what a section shows."""
    alts = alts or {}
    lines = [
        f"# {title}",
        "",
        f"_Generated {time.strftime('%Y-%m-%d %H:%M')} by seedvar from {source}._",
        "",
    ]
    glance = _glance(sections)
    if glance is not None:
        lines += [f"**{glance.headline}**", "", *(_bullet_md(b) for b in glance.bullets), ""]
        for name in glance.figures:
            lines += [f"![{_md_alt(alts, name)}](figures/{name}.png)", ""]
    rest = [sec for sec in sections if sec is not glance]
    lines += ["Contents: " + " · ".join(f"[{sec.title}](#{sec.anchor})" for sec in rest), ""]
    for sec in rest:
        lines += [f'<a id="{sec.anchor}"></a>', "", f"## {sec.title}", ""]
        text = [line for t in sec.text for line in (t, "")]
        tables = []
        for name, df in sec.tables.items():
            tables += [
                f'<a id="table-{name}"></a>',
                "",
                _shown(sec, df).to_markdown(index=False, disable_numparse=True),
                "",
                f"(tables/{name}.csv)",
                "",
            ]
        details = [line for t in sec.details for line in (t, "")]
        if sec.fold_tables:
            lines += text + details + tables
        else:
            lines += (tables + text if sec.tables_first else text + tables) + details
        for name in sec.figures:
            lines += [f"![{_md_alt(alts, name)}](figures/{name}.png)", ""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1180px;margin:1em auto;padding:0 1em;color:#222;overflow-wrap:break-word}
h1{font-size:1.5em;margin:.3em 0 .5em}h2{margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
div.table{overflow-x:auto;max-width:100%;margin:.5em 0 1em}
img{max-width:100%;height:auto}figure{margin:1em 0}
p.answer{font-size:1.05em;background:#f6f8fa;border-left:4px solid #4C72B0;padding:.6em 1em}
section.glance{display:grid;grid-template-columns:minmax(300px,2fr) 3fr;gap:1.2em;align-items:start}
section.glance p.headline{font-size:1.12em;font-weight:600;margin:0 0 .6em;border-left:4px solid #4C72B0;padding-left:.6em}
section.glance ul{margin:0;padding-left:1.2em;line-height:1.5}section.glance li{margin:.35em 0}
section.glance figure{margin:0}
nav.toc{font-size:.85em;margin:1em 0;padding:.4em .8em;background:#f6f8fa;line-height:1.5}nav.toc a{margin-right:1em;white-space:nowrap}
details{margin:.6em 0}details>summary{cursor:pointer;color:#4C72B0}details.section>summary h2{display:inline;margin:0}
@media (max-width:900px){section.glance{grid-template-columns:1fr}}"""

# A link to a table inside a closed <details> opens it, so every number of the answer lands on its table.
_OPEN_TARGET = """<script>function openTarget(){var t=location.hash&&document.getElementById(location.hash.slice(1));
for(var e=t;e;e=e.parentElement){if(e.tagName==='DETAILS')e.open=true}if(t)t.scrollIntoView()}
window.addEventListener('hashchange',openTarget);window.addEventListener('load',openTarget)</script>"""


def _figure_html(name: str, images: dict[str, bytes], alts: dict[str, str]) -> str:
    data = base64.b64encode(images[name]).decode()
    alt = html.escape(alts.get(name, name), quote=True)
    return f"<figure id='figure-{name}'><img alt=\"{alt}\" src='data:image/png;base64,{data}'></figure>"


def _section_html(sec: Section, images: dict[str, bytes], alts: dict[str, str]) -> list[str]:
    text = [f"<p{' class=answer' if sec.answer else ''}>{html.escape(t)}</p>" for t in sec.text]
    tables = [
        f"<div class='table' id='table-{name}'>{_shown(sec, df).to_html(index=False, escape=True)}</div>"
        for name, df in sec.tables.items()
    ]
    details = [f"<p>{html.escape(t)}</p>" for t in sec.details]
    if sec.fold_tables and (tables or details):
        what = ", ".join(f"{name} ({len(df)} rows)" for name, df in sec.tables.items())
        summary = f"The table: {what}" if what else "How it is computed"
        body = text + [f"<details><summary>{html.escape(summary)}</summary>", *details, *tables, "</details>"]
    else:
        body = (tables + text if sec.tables_first else text + tables) + details
    return body + [_figure_html(name, images, alts) for name in sec.figures]


def render_html(
    title: str, sections: list[Section], images: dict[str, bytes], alts: dict[str, str] | None = None
) -> str:
    """index.html: one self-contained page that opens on the answer. The glance (headline and numbers
    beside the figure that shows them) comes first, then the contents and each section; every number of
    the glance links to its table, settings and run lists are folded, wide tables scroll in their box."""
    alts = alts or {}
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<style>{_CSS}</style>{_OPEN_TARGET}</head><body><h1>{html.escape(title)}</h1>",
    ]
    glance = _glance(sections)
    rest = [sec for sec in sections if sec is not glance]
    toc = (
        "<nav class='toc'>Contents: "
        + "".join(f"<a href='#{sec.anchor}'>{html.escape(sec.title)}</a>" for sec in rest)
        + "</nav>"
    )
    if glance is not None:  # the contents under the numbers, beside the figure: the answer's table stays high
        items = "".join(
            f"<li>{html.escape(b.label)}: <a href='#table-{b.table}'>{html.escape(b.value)}</a></li>"
            for b in glance.bullets
        )
        figs = "".join(_figure_html(name, images, alts) for name in glance.figures)
        out.append(
            f"<section class='glance' id='{glance.anchor}'><div><p class='headline'>"
            f"{html.escape(glance.headline)}</p><ul>{items}</ul>{toc}</div>{figs or '<div></div>'}</section>"
        )
    else:
        out.append(toc)
    for sec in rest:
        heading = f"<h2 id='{sec.anchor}'>{html.escape(sec.title)}</h2>"
        if sec.folded:
            out += [
                f"<details class='section'><summary>{heading}</summary>",
                *_section_html(sec, images, alts),
            ]
            out.append("</details>")
        else:
            out += [heading, *_section_html(sec, images, alts)]
    out.append("</body></html>")
    return "\n".join(out)
