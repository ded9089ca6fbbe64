"""Report figures (seaborn / matplotlib): each function takes tidy tables and returns a Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from seedvar.analysis.tables import MapData  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


def accuracy_distribution(passes: pd.DataFrame) -> Figure:
    """Every pass of every trained model, per condition and mode: box plus points."""
    n = passes["condition"].nunique()
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * n + 3), 4.2))
    sns.boxplot(
        data=passes,
        x="condition",
        y="accuracy",
        hue="mode",
        ax=ax,
        fliersize=0,
        width=0.7,
        boxprops={"alpha": 0.4},
    )
    sns.stripplot(
        data=passes,
        x="condition",
        y="accuracy",
        hue="mode",
        dodge=True,
        ax=ax,
        size=3,
        alpha=0.7,
        legend=False,
    )
    ax.set(xlabel="", ylabel="test accuracy (%)", title="Test accuracy: every pass of every trained model")
    ax.legend(title="test mode", loc="best")
    fig.tight_layout()
    return fig


def variance_components(vc: pd.DataFrame) -> Figure:
    """Stacked bars: absolute variance (left) and shares of it (right), each with its 95% CI."""
    labels = [f"{c}\n{m}" for c, m in zip(vc["condition"], vc["mode"], strict=True)]
    x = np.arange(len(vc))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(max(9, 2.4 * len(vc) + 3), 4.4))
    between, within = vc["between"].to_numpy(), vc["within"].to_numpy()
    colors = {"between": "#4C72B0", "within": "#DD8452"}
    names = {
        "between": "training randomness (between models)",
        "within": "test-time dropout (within a model)",
    }
    ax.bar(x, between, color=colors["between"], label=names["between"])
    ax.bar(x, within, bottom=between, color=colors["within"], label=names["within"])
    for offset, part, base in ((-0.12, "between", 0 * between), (0.12, "within", between)):
        value = vc[part].to_numpy()
        lo = np.clip(value - vc[f"{part}_ci_low"].to_numpy(), 0, None)
        hi = np.clip(vc[f"{part}_ci_high"].to_numpy() - value, 0, None)
        ax.errorbar(x + offset, base + value, yerr=[lo, hi], fmt="none", ecolor="black", capsize=3, lw=1)
    top = float((between + within).max())
    if top > 0:
        ax.set_ylim(0, 1.6 * top)  # wide CIs (few models) run off the top rather than flatten the bars
    ax.set_xticks(x, labels)
    ax.set(ylabel="variance of accuracy (points²)", title="Variance components (95% CIs, clipped at the top)")
    ax.legend(loc="upper left", fontsize="small")
    share_w = vc["share_within"].to_numpy()
    ax2.bar(x, 100 - share_w, color=colors["between"])
    ax2.bar(x, share_w, bottom=100 - share_w, color=colors["within"])
    lo = np.clip(share_w - vc["share_within_ci_low"].to_numpy(), 0, None)
    hi = np.clip(vc["share_within_ci_high"].to_numpy() - share_w, 0, None)
    ax2.errorbar(x, 100 - share_w, yerr=[hi, lo], fmt="none", ecolor="black", capsize=4, lw=1)
    ax2.set_xticks(x, labels)
    ax2.set(ylim=(0, 100), ylabel="share of the variance (%)", title="Share from test-time dropout (95% CI)")
    fig.tight_layout()
    return fig


def per_source(values: pd.DataFrame) -> Figure:
    """Eval accuracy of each trained model, by the one source of randomness that varied."""
    fig, ax = plt.subplots(
        figsize=(max(6, 1.1 * values["source"].nunique() * values["condition"].nunique() + 2), 4.2)
    )
    several = values["condition"].nunique() > 1  # seaborn cannot dodge a single hue level
    sns.stripplot(data=values, x="source", y="accuracy", hue="condition", dodge=several, ax=ax, size=5)
    sns.pointplot(
        data=values,
        x="source",
        y="accuracy",
        hue="condition",
        dodge=0.4 if several else False,
        ax=ax,
        errorbar="sd",
        linestyle="none",
        marker="_",
        markersize=20,
        legend=False,
        palette="dark",
    )
    ax.set(
        xlabel="source varied (others held at the base seed)",
        ylabel="eval accuracy (%)",
        title="Spread from each source of training randomness (bars: ±1 sd)",
    )
    fig.tight_layout()
    return fig


def flip_rates(flips: pd.DataFrame) -> Figure:
    """Share of test predictions that change: between two passes of one model, and between two models."""
    within = flips.assign(what=lambda d: "two passes, " + d["mode"], rate=flips["flip_rate"])
    between = flips[flips["mode"] == "eval"].assign(
        what="two seeds, eval", rate=lambda d: d["churn_between_models"]
    )
    bars = pd.concat([within, between])[["condition", "what", "rate"]].dropna()
    fig, ax = plt.subplots(figsize=(max(6, 2.0 * flips["condition"].nunique() + 3), 4))
    sns.barplot(data=bars, x="condition", y="rate", hue="what", ax=ax, errorbar=None)
    ax.set(
        xlabel="", ylabel="% of test samples", title="Predictions that change between two passes or two seeds"
    )
    ax.legend(title="between", fontsize="small")
    fig.tight_layout()
    return fig


def training_curves(curves: pd.DataFrame) -> Figure:
    """Mean training loss and accuracy per epoch with a ±1 sd band over replicates."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "loss", "training loss"), (axes[1], "acc", "training accuracy (%)")):
        sns.lineplot(data=curves, x="epoch", y=metric, hue="condition", errorbar="sd", ax=ax)
        ax.set(ylabel=label, title=f"{label}: mean ± 1 sd over replicates")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    fig.tight_layout()
    return fig


def comparison_matrix(diff: pd.DataFrame, pvals: pd.DataFrame) -> Figure:
    """Pairwise difference of mean eval accuracy (row minus column), annotated with Holm-adjusted p."""
    n = len(diff)
    fig, ax = plt.subplots(figsize=(1.4 * n + 3, 1.1 * n + 2))
    annot = (
        diff.map(lambda v: f"{v:+.2f}").astype(str)
        + "\n"
        + pvals.map(lambda p: "" if np.isnan(p) else f"p={p:.3f}")
    )
    sns.heatmap(diff, annot=annot, fmt="", cmap="RdBu", center=0, ax=ax, cbar_kws={"label": "points"})
    ax.set(title="Eval accuracy: row minus column (Welch p, Holm-adjusted)", xlabel="", ylabel="")
    fig.tight_layout()
    return fig


def classification_maps(maps: list[MapData]) -> Figure:
    """One row per condition: ground truth, the split (training blocks, test pixels, the gap), the
    eval-mode map, two train-mode passes, and the test pixels that flipped between them."""
    columns = 6
    fig, axes = plt.subplots(len(maps), columns, figsize=(3.3 * columns, 3.5 * len(maps)), squeeze=False)
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
