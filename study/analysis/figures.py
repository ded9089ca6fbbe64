"""Report figures (seaborn / matplotlib): each function takes tidy tables and returns a Figure."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from seedvar.analysis.maps import MapData  # noqa: E402
from seedvar.results import EVAL, MODES  # noqa: E402
from seedvar.stats.interval import ALPHA  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")

# Every figure keeps to a bounded width from 1 to 30 conditions and 3 to 300 seeds: conditions wrap into
# rows (or run down the y axis), and legends sit above the axes, never on the data.
WIDTH = 12.0  # inches, at the report's 110 dpi: 1,320 pixels
PER_ROW = 8  # conditions side by side before a figure wraps to the next row
PANELS_PER_ROW = 4  # small panels (one per condition) side by side
MAX_MAPS = 6  # rows of classification maps drawn; the section names the conditions shown
MODE_ORDER = MODES
JITTER_SEED = 0  # seaborn's strip plots jitter points with numpy's global generator


def _strip(**kw: object) -> None:
    """seaborn's stripplot with its jitter drawn from a fixed seed (seaborn draws it from numpy's global
    generator, whose state is restored after): the same runs give the same figure, byte for byte, whatever
    ran before, so a report is itself reproducible."""
    state = np.random.get_state()
    np.random.seed(JITTER_SEED)
    try:
        sns.stripplot(**kw)
    finally:
        np.random.set_state(state)


def wrap(text: str, inches: float, size: float = 13.0) -> str:
    """A title broken into lines that fit `inches` at `size` points (a character is about 0.55 em wide),
    so a long title on a narrow figure (one condition) wraps instead of running off both edges."""
    chars = max(20, int(inches * 72 / (0.55 * size)))
    return textwrap.fill(text, chars)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _columns(fig: Figure, labels: list[str]) -> int:
    """Legend entries per row that fit the figure's width (small font: ~0.085 inch a character, 0.9 for the handle and gaps)."""
    longest = max((len(label) for label in labels), default=1)
    return max(1, min(len(labels), int(fig.get_figwidth() // (0.085 * longest + 0.9))))


def _legend_above(fig: Figure, handles: list, labels: list[str], title: str, top: float) -> None:
    """One legend for the whole figure, just above its axes: tight_layout laid them and their titles out
    below `top` (measuring the axes' tight boxes again here cost as much as drawing the figure)."""
    fig.legend(
        handles,
        labels,
        title=title or None,
        loc="lower center",
        bbox_to_anchor=(0.5, top - 0.12 / fig.get_figheight()),  # less most of tight_layout's pad
        ncol=_columns(fig, labels),
        frameon=False,
        fontsize="small",
        title_fontsize="small",
    )


def _legend_inches(fig: Figure, labels: list[str], title: bool = True, suptitle: bool = False) -> float:
    rows = -(-len(labels) // _columns(fig, labels))
    return 0.15 + 0.25 * rows + 0.2 * title + 0.35 * suptitle


def _top(fig: Figure, labels: list[str], title: bool = True, suptitle: bool = False) -> float:
    """The fraction of a figure's height left to its axes below the legend of these labels (with a
    legend title or not) and a figure title."""
    return 1.0 - _legend_inches(fig, labels, title, suptitle) / fig.get_figheight()


def _tick_labels(ax: plt.Axes, names: list[str]) -> None:
    if max((len(n) for n in names), default=0) * len(names) > 90:  # long names side by side: slant them
        ax.tick_params(axis="x", labelrotation=25)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")


def accuracy_distribution(passes: pd.DataFrame) -> Figure:
    """Per condition and mode: a box over every pass of every trained model and a point per trained
    model (its mean over passes), so 300 seeds stay 300 points; conditions wrap PER_ROW to a row."""
    modes = [m for m in MODE_ORDER if m in set(passes["mode"])]
    conds = list(dict.fromkeys(passes["condition"]))
    rows = _chunks(conds, PER_ROW)
    width = min(WIDTH, max(6.0, 1.4 * len(rows[0]) + 2.5))
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, 3.4 * len(rows) + 1.0), squeeze=False)
    palette = dict(zip(modes, sns.color_palette(n_colors=len(modes)), strict=True))
    means = passes.groupby(["condition", "run", "mode"], sort=False, as_index=False)["accuracy"].mean()
    n_models = means.groupby(["condition", "mode"]).size().max()
    for ax, chunk in zip(axes[:, 0], rows, strict=True):
        sub = passes[passes["condition"].isin(chunk)]
        common = {"x": "condition", "y": "accuracy", "hue": "mode", "order": chunk, "hue_order": modes}
        sns.boxplot(
            data=sub,
            **common,
            palette=palette,
            ax=ax,
            fliersize=0,
            width=0.75,
            legend=False,
            boxprops={"alpha": 0.4},
        )
        _strip(
            data=means[means["condition"].isin(chunk)],
            **common,
            palette=palette,
            dodge=len(modes) > 1,
            ax=ax,
            size=4 if n_models <= 30 else 2.5,
            alpha=0.8 if n_models <= 30 else 0.5,
            legend=False,
        )
        ax.set(xlabel="", ylabel="test accuracy (%)")
        _tick_labels(ax, chunk)
    title = wrap(
        "Test accuracy: boxes over every pass, a point per trained model (its mean over passes)", width
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[m]) for m in modes]
    top = _top(fig, modes, suptitle=True) - 0.3 * title.count("\n") / fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, top))
    _legend_above(fig, handles, modes, "test mode", top)
    _title_above(fig, title)
    return fig


def _title_above(fig: Figure, title: str) -> None:
    """The figure's title just above its legend (the page crops the space left above it)."""
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[-1].get_window_extent(renderer).transformed(fig.transFigure.inverted())
    fig.suptitle(title, y=legend.y1 + 0.05 / fig.get_figheight(), va="bottom")


def variance_components(vc: pd.DataFrame) -> Figure:
    """Per condition (down the y axis) and stochastic mode: the variance of accuracy split into training
    randomness and test-time dropout (left), and the dropout's share with its 95% CI (right)."""
    stochastic = vc[vc["mode"] != EVAL]
    vc = stochastic if len(stochastic) else vc
    modes = [m for m in MODE_ORDER if m in set(vc["mode"])]
    conds = list(dict.fromkeys(vc["condition"]))
    band = 0.8 / len(modes)
    height = max(3.0, 0.2 * len(conds) * len(modes) + 1.8)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(WIDTH, height), sharey=True)
    colors = {"between": "#4C72B0", "within": "#DD8452"}
    y_of = {c: i for i, c in enumerate(conds)}
    top = 0.0
    for j, mode in enumerate(modes):
        m = vc[vc["mode"] == mode]
        y = np.array([y_of[c] for c in m["condition"]]) - 0.4 + band * (j + 0.5)
        between, within = m["between"].to_numpy(), m["within"].to_numpy()
        hatch = None if j == 0 else "//"
        ax.barh(y, between, height=band * 0.9, color=colors["between"], hatch=hatch, edgecolor="white")
        ax.barh(
            y, within, left=between, height=band * 0.9, color=colors["within"], hatch=hatch, edgecolor="white"
        )
        top = max(top, float((between + within).max()))
        share = m["share_within"].to_numpy()
        lo = np.clip(share - m["share_within_ci_low"].to_numpy(), 0, None)
        hi = np.clip(m["share_within_ci_high"].to_numpy() - share, 0, None)
        ax2.barh(y, share, height=band * 0.9, color=colors["within"], hatch=hatch, edgecolor="white")
        ax2.errorbar(share, y, xerr=[lo, hi], fmt="none", ecolor="black", capsize=2, lw=1)
    ax.set_yticks(range(len(conds)), conds)
    ax.invert_yaxis()
    ax.set(xlabel="variance of accuracy (points²)", title="Between models and within a model")
    ax2.set(
        xlim=(0, 100),
        xlabel="share of the variance from test-time dropout (%)",
        title="Dropout's share (95% CI)",
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[k]) for k in ("between", "within")]
    labels = ["training randomness (between models)", "test-time dropout (within a model)"]
    handles += [
        plt.Rectangle((0, 0), 1, 1, facecolor="#bbbbbb", hatch=None if j == 0 else "//")
        for j in range(len(modes))
    ]
    labels += [f"{m} mode" for m in modes]
    top = _top(fig, labels, title=False)
    fig.tight_layout(rect=(0, 0, 1, top))
    _legend_above(fig, handles, labels, "", top)
    return fig


def per_source(values: pd.DataFrame) -> Figure:
    """Eval accuracy of each trained model by the one source of randomness that varied: one panel per
    condition, PANELS_PER_ROW to a row."""
    conds = list(dict.fromkeys(values["condition"]))
    sources_ = list(dict.fromkeys(values["source"]))
    cols = min(len(conds), PANELS_PER_ROW)
    rows = -(-len(conds) // cols)
    width = min(WIDTH, max(6.0, (0.9 * len(sources_) + 1.5) * cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.4 * rows + 0.6), squeeze=False, sharey=True)
    for ax, cond in zip(axes.flat, conds, strict=False):
        sub = values[values["condition"] == cond]
        _strip(data=sub, x="source", y="accuracy", order=sources_, ax=ax, size=4, alpha=0.7)
        sns.pointplot(
            data=sub,
            x="source",
            y="accuracy",
            order=sources_,
            ax=ax,
            errorbar="sd",
            linestyle="none",
            marker="_",
            markersize=18,
            color="black",
        )
        ax.set(xlabel="source varied", ylabel="eval accuracy (%)", title=cond if len(conds) > 1 else "")
        _tick_labels(ax, sources_)
    for ax in list(axes.flat)[len(conds) :]:
        ax.set_visible(False)
    fig.suptitle(
        wrap("Spread from each source of training randomness, others at the base seed (bars: ±1 sd)", width)
    )
    fig.tight_layout()
    return fig


def flip_rates(flips: pd.DataFrame) -> Figure:
    """Share of test predictions that change: between two passes of one model, and between two models;
    conditions down the y axis."""
    within = flips.assign(what=lambda d: "two passes, " + d["mode"], rate=flips["flip_rate"])
    between = flips[flips["mode"] == EVAL].assign(
        what="two seeds, eval", rate=lambda d: d["churn_between_models"]
    )
    bars = pd.concat([within, between])[["condition", "what", "rate"]].dropna()
    conds = list(dict.fromkeys(flips["condition"]))
    kinds = max(1, bars["what"].nunique())
    fig, ax = plt.subplots(figsize=(min(WIDTH, 9.0), max(3.0, (0.1 + 0.11 * kinds) * len(conds) + 1.8)))
    sns.barplot(data=bars, y="condition", x="rate", hue="what", order=conds, ax=ax, errorbar=None, orient="h")
    ax.set(
        ylabel="",
        xlabel="% of test samples",
        title=wrap("Predictions that change between two passes or two seeds", fig.get_figwidth(), 12),
    )
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    top = _top(fig, labels)
    fig.tight_layout(rect=(0, 0, 1, top))
    _legend_above(fig, handles, labels, "between", top)
    return fig


def training_curves(curves: pd.DataFrame) -> Figure:
    """Mean training loss and accuracy per epoch with a ±1 sd band over replicates, a line per condition;
    the legend above both panels."""
    conds = list(dict.fromkeys(curves["condition"]))
    palette = sns.color_palette("husl" if len(conds) > 10 else None, n_colors=len(conds))
    fig, axes = plt.subplots(1, 2, figsize=(min(WIDTH, 11.0), 4.0))
    fig.set_figheight(4.0 + _legend_inches(fig, conds))
    for ax, metric, label in ((axes[0], "loss", "training loss"), (axes[1], "acc", "training accuracy (%)")):
        sns.lineplot(
            data=curves,
            x="epoch",
            y=metric,
            hue="condition",
            hue_order=conds,
            palette=palette,
            errorbar="sd",
            ax=ax,
            legend=ax is axes[0],
        )
        ax.set(ylabel=label, title=f"{label}: mean ± 1 sd over replicates")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    top = _top(fig, labels)
    fig.tight_layout(rect=(0, 0, 1, top))
    _legend_above(fig, handles, labels, "condition", top)
    return fig


def comparison_matrix(
    diff: pd.DataFrame, pvals: pd.DataFrame, what: str = "Eval accuracy", unit: str = "points"
) -> Figure:
    """Pairwise difference of means (row minus column): each cell annotated with its Holm-adjusted p up to
    10 conditions; beyond, `*` marks the pairs told apart (p < ALPHA)."""
    n = len(diff)
    side = min(WIDTH - 1.5, 0.5 * n + 3.5)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    if n <= 10:
        annot = (
            diff.map(lambda v: f"{v:+.3g}").astype(str)
            + "\n"
            + pvals.map(lambda p: "" if np.isnan(p) else f"p={p:.3f}")
        )
        title = f"{what}: row minus column (Welch p, Holm-adjusted)"
    else:
        annot = pvals.map(lambda p: "*" if p < ALPHA else "")
        title = f"{what}: row minus column (*: told apart, Holm-adjusted Welch p < {ALPHA:g})"
    sns.heatmap(
        diff, annot=annot, fmt="", cmap="RdBu", center=0, ax=ax, cbar_kws={"label": unit}, square=n > 10
    )
    ax.set(title=wrap(title, side, 12), xlabel="", ylabel="")
    _tick_labels(ax, list(diff.columns))
    fig.tight_layout()
    return fig


def classification_maps(maps: list[MapData]) -> Figure:
    """One row per condition (the first MAX_MAPS): ground truth, the split (training blocks, test pixels,
    the gap), the eval-mode map, two train-mode passes, and the test pixels that flipped between them."""
    maps = maps[:MAX_MAPS]
    columns = 6
    side = WIDTH / columns
    fig, axes = plt.subplots(len(maps), columns, figsize=(WIDTH, (side + 0.3) * len(maps)), squeeze=False)
    for row, m in zip(axes, maps, strict=True):
        _map_row(row, m)
    fig.tight_layout()
    return fig


def _map_row(axes: np.ndarray, m: MapData) -> None:
    gt, coords, labels, pass_a, pass_b = m.gt, m.coords, m.labels, m.pass_a, m.pass_b
    classes = int(max(gt.max(), labels.max())) + 1
    cmap = ListedColormap(sns.color_palette("tab20", classes)).with_extremes(bad="white")

    def canvas(values: np.ndarray) -> np.ndarray:
        img = np.full(gt.shape, np.nan)
        img[coords[:, 0], coords[:, 1]] = values
        return img

    # labelled pixels: training (0), test (1), or neither: the gap of a spatial split (2); runs that did
    # not record their training pixels show every labelled non-test pixel as training
    known = m.train_ids is not None
    split = np.where(gt >= 0, 2.0 if known else 0.0, np.nan)
    split[coords[:, 0], coords[:, 1]] = 1.0
    if known:
        split.flat[m.train_ids] = 0.0
    flipped = pass_a != pass_b
    panels = [
        ("ground truth", np.where(gt >= 0, gt, np.nan), cmap, classes - 1),
        (
            "split: train / test / gap" if known else "split: train / test",
            split,
            ListedColormap(["#1f3b73", "#9ecae1", "#f0a030"]),
            2,
        ),
        ("eval mode", canvas(m.eval_pred), cmap, classes - 1),
        (f"{m.mode} mode, pass 1", canvas(pass_a), cmap, classes - 1),
        (f"{m.mode} mode, pass 2", canvas(pass_b), cmap, classes - 1),
        (
            f"flipped: {flipped.sum()} of {len(flipped)}",
            canvas(flipped.astype(float)),
            ListedColormap(["#dddddd", "#d62728"]),
            1,
        ),
    ]
    for ax, (name, img, cm, top) in zip(axes, panels, strict=True):
        ax.imshow(img, cmap=cm, vmin=0, vmax=top, interpolation="nearest")
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel(f"{m.condition}\n{m.run}", fontsize="small")


def metric_distribution(runs: pd.DataFrame, metric: str, order: list[str] | None = None) -> Figure:
    """Per condition (in `order`, best first): a box over its runs and a point per run; conditions wrap
    PER_ROW to a row."""
    conds = order or list(dict.fromkeys(runs["condition"]))
    rows = _chunks(conds, PER_ROW)
    width = min(WIDTH, max(6.0, 1.2 * len(rows[0]) + 2.5))
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, 3.2 * len(rows) + 0.6), squeeze=False)
    many = runs.groupby("condition").size().max() > 30
    for ax, chunk in zip(axes[:, 0], rows, strict=True):
        sub = runs[runs["condition"].isin(chunk)]
        common = {"x": "condition", "y": "value", "order": chunk}
        sns.boxplot(data=sub, **common, ax=ax, fliersize=0, width=0.6, color="#c6d4e8")
        _strip(
            data=sub, **common, ax=ax, size=2.5 if many else 4, alpha=0.5 if many else 0.8, color="#4C72B0"
        )
        ax.set(xlabel="", ylabel=metric)
        _tick_labels(ax, chunk)
    fig.suptitle(wrap(f"{metric}: a point per run, a box per condition", width), y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def metric_history(history: pd.DataFrame, metric: str) -> Figure:
    """The metric over its logged steps: the mean and a ±1 sd band over each condition's runs."""
    conds = list(dict.fromkeys(history["condition"]))
    palette = sns.color_palette("husl" if len(conds) > 10 else None, n_colors=len(conds))
    fig, ax = plt.subplots(figsize=(min(WIDTH, 8.0), 4.0))
    fig.set_figheight(4.0 + _legend_inches(fig, conds))
    sns.lineplot(
        data=history,
        x="step",
        y="value",
        hue="condition",
        hue_order=conds,
        palette=palette,
        errorbar="sd",
        ax=ax,
    )
    ax.set(ylabel=metric, title=f"{metric}: mean ± 1 sd over runs")
    handles, labels = ax.get_legend_handles_labels()
    ax.get_legend().remove()
    top = _top(fig, labels)
    fig.tight_layout(rect=(0, 0, 1, top))
    _legend_above(fig, handles, labels, "condition", top)
    return fig


def intervals(accuracy: pd.DataFrame, variance: pd.DataFrame, order: list[str]) -> Figure:
    """The answer's figure: per condition (down the y axis, in `order`, best first), each test mode's mean
    accuracy with its 95% CI over trained models (left), and where test-time dropout moves train-mode
    passes, its share of the train-mode variance with its 95% CI (right). Sized by its content: a band of
    rows per condition, narrower bands from 12 conditions on."""
    modes = [m for m in MODE_ORDER if m in set(accuracy["mode"])]
    conds = [c for c in order if c in set(accuracy["condition"])]
    train = (
        variance[(variance["mode"] == "train") & (variance["within"] > 0)] if not variance.empty else variance
    )
    shares = not train.empty
    band = min(0.62, max(0.3, 7.0 / max(1, len(conds)))) * (0.5 + 0.5 * len(modes) / 3)
    width = 8.0 if shares else 5.5
    height = 2.0 + max(1.0, band * len(conds))  # legend, titles and x axis, then the rows
    fig, axes = plt.subplots(
        1,
        2 if shares else 1,
        figsize=(width, height),
        squeeze=False,
        sharey=True,
        gridspec_kw={"width_ratios": [3, 2]} if shares else None,
    )
    ax = axes[0, 0]
    palette = dict(zip(modes, sns.color_palette(n_colors=len(modes)), strict=True))
    y_of = {c: i for i, c in enumerate(conds)}
    step = 0.6 / max(1, len(modes))
    small = len(conds) > 12
    for j, mode in enumerate(modes):
        m = accuracy[(accuracy["mode"] == mode) & accuracy["condition"].isin(conds)]
        y = np.array([y_of[c] for c in m["condition"]]) - 0.3 + step * (j + 0.5)
        mean = m["mean"].to_numpy(float)
        lo = np.nan_to_num(np.clip(mean - m["ci_low"].to_numpy(float), 0, None))
        hi = np.nan_to_num(np.clip(m["ci_high"].to_numpy(float) - mean, 0, None))
        ax.errorbar(
            mean, y, xerr=[lo, hi], fmt="o", color=palette[mode], ms=3 if small else 5, capsize=2, lw=1.2
        )
    ax.set_yticks(range(len(conds)), conds)
    ax.set_ylim(len(conds) - 0.5, -0.5)  # best on top
    ax.set(xlabel="test accuracy (%)", title="Mean accuracy by test mode, 95% CI over seeds")
    if small:
        ax.tick_params(axis="y", labelsize="small")
    if shares:
        ax2 = axes[0, 1]
        rows = train[train["condition"].isin(conds)]
        y = np.array([y_of[c] for c in rows["condition"]], float)
        share = rows["share_within"].to_numpy(float)
        lo = np.clip(share - rows["share_within_ci_low"].to_numpy(float), 0, None)
        hi = np.clip(rows["share_within_ci_high"].to_numpy(float) - share, 0, None)
        ax2.errorbar(
            share, y, xerr=[lo, hi], fmt="s", color="#DD8452", ms=3 if small else 5, capsize=2, lw=1.2
        )
        ax2.set(
            xlim=(0, 100),
            xlabel="% of train-mode variance",
            title="Test-time dropout's share, 95% CI",
        )
    handles = [plt.Line2D([], [], marker="o", ls="none", color=palette[m]) for m in modes]
    _lay_out(fig, conds, modes)
    fig.legend(
        handles,
        modes,
        title="test mode",
        loc="upper center",
        bbox_to_anchor=((fig.subplotpars.left + fig.subplotpars.right) / 2, 1.0),  # over the panels
        ncol=_columns(fig, modes),
        frameon=False,
        fontsize="small",
        title_fontsize="small",
    )
    return fig


def _lay_out(fig: Figure, labels: list[str], legend: list[str]) -> None:
    """Margins from the measured width of the longest y label and titles wrapped to their panels, set
    once: tight_layout and the axes' tight boxes cost more than drawing this figure. Should an estimate
    fall short, the page's PNG (render.png) sees ink at the edge and grows the canvas: nothing is cut."""
    renderer = fig.canvas.get_renderer()
    axes = fig.axes
    tick = axes[0].get_yticklabels()[0].get_fontproperties() if labels else None
    widest = max(
        (renderer.get_text_width_height_descent(c, tick, ismath=False)[0] for c in labels), default=0.0
    )
    width, height = fig.get_size_inches()
    left = (widest / fig.dpi + 0.3) / width
    right = 1 - 0.2 / width
    gap = 0.25  # inches between panels
    ratios = [3, 2][: len(axes)]
    panel = (width * (right - left) - gap * (len(axes) - 1)) / sum(ratios)
    lines = 1
    for ax, ratio in zip(axes, ratios, strict=True):
        title = wrap(ax.get_title(), panel * ratio, 12)
        ax.set_title(title)
        lines = max(lines, title.count("\n") + 1)
    top = 1 - (_legend_inches(fig, legend) + 0.22 * lines + 0.05) / height
    fig.subplots_adjust(left=left, right=right, bottom=0.75 / height, top=top, wspace=gap / panel / 2.5)
