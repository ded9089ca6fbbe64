"""`seedvar report`: read a study's runs back from MLflow and write the answer, tables and figures.

Everything comes from MLflow (params, metrics, tags and the predictions artifacts), so a report can be
made on any machine that reaches the store. Output: index.html (self-contained), report.md,
tables/*.csv and figures/*.png.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from study import stats
from study.errors import UserError
from study.plan import condition_name
from study.tracking import TAG, Store

STOCHASTIC = ("train", "mc_dropout")
MODE_WORDS = {"eval": "Eval-mode", "train": "Train-mode", "mc_dropout": "MC-dropout"}


@dataclass
class Run:
    """One child run as read back from MLflow, with its per-pass accuracies (percentage points)."""

    run_id: str
    name: str
    status: str
    model: str
    deterministic: bool
    varied: str
    replicate: int
    config_hash: str
    failure: str
    params: dict[str, str]
    metrics: dict[str, float]
    start_time: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def condition(self) -> str:
        return condition_name(self.model, self.deterministic)

    def accuracy(self, mode: str) -> np.ndarray:
        """Per-pass accuracy in percentage points, recomputed from the logged predictions."""
        return 100 * (self.arrays[mode] == self.arrays["labels"][None, :]).mean(axis=1)

    @property
    def modes(self) -> list[str]:
        return [m for m in ("eval", "train", "mc_dropout") if m in self.arrays]


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


def load_runs(store: Store, experiment_id: str) -> tuple[list[Run], list[Any]]:
    """Child runs (with predictions for finished ones; latest FINISHED per config hash) and sweep runs."""
    children, sweeps = [], []
    for r in store.search(experiment_id):
        tags = r.data.tags
        if tags.get(f"{TAG}kind") == "sweep":
            sweeps.append(r)
            continue
        if tags.get(f"{TAG}kind") != "run":
            continue
        children.append(
            Run(
                run_id=r.info.run_id,
                name=r.info.run_name,
                status=r.info.status,
                model=tags.get(f"{TAG}model", r.data.params.get("model", "?")),
                deterministic=tags.get(f"{TAG}deterministic", "true") == "true",
                varied=tags.get(f"{TAG}varied_source", "all"),
                replicate=int(tags.get(f"{TAG}replicate", "0")),
                config_hash=tags.get(f"{TAG}config_hash", r.info.run_id),
                failure=tags.get(f"{TAG}failure", ""),
                params=dict(r.data.params),
                metrics=dict(r.data.metrics),
                start_time=r.info.start_time or 0,
            )
        )
    latest: dict[str, Run] = {}
    for run in sorted(children, key=lambda r: r.start_time):
        if run.status == "FINISHED":
            latest[run.config_hash] = run
    with tempfile.TemporaryDirectory() as tmp:
        for run in latest.values():
            path = store.download(run.run_id, "predictions.npz", Path(tmp) / run.run_id)
            with np.load(path, allow_pickle=False) as npz:
                run.arrays = {k: npz[k] for k in npz.files}
    finished = sorted(latest.values(), key=lambda r: (r.model, not r.deterministic, r.varied, r.replicate))
    unfinished = [r for r in children if r.status != "FINISHED" and r.config_hash not in latest]
    return finished + unfinished, sweeps


def write_report(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    out: str | Path | None = None,
    formats: list[str] | tuple[str, ...] = ("html", "md"),
) -> Path:
    """Build every section and write the requested formats plus tables/*.csv and figures/*.png."""
    bad = [f for f in formats if f not in ("html", "md")]
    if bad or not formats:
        raise UserError(f"--format {','.join(formats)}: choose from html, md (comma-separated)")
    store = Store(tracking_uri, create=False)
    exp_id = store.experiment_id(experiment, create=False)
    if exp_id is None:
        names = sorted(e.name for e in store.call(store.client.search_experiments) if e.name != "Default")
        known = ", ".join(names) if names else "none yet"
        raise UserError(
            f"no experiment named {experiment!r} in {store.uri} (known: {known}); run `seedvar sweep` first"
        )
    runs, sweeps = load_runs(store, exp_id)
    finished = [r for r in runs if r.status == "FINISHED"]
    if not finished:
        states = pd.Series([r.status for r in runs]).value_counts().to_dict() if runs else {}
        detail = ", ".join(f"{n} {s}" for s, n in states.items()) or "no runs at all"
        raise UserError(
            f"experiment {experiment!r} has no finished runs yet ({detail}); run or resume `seedvar sweep`"
        )
    out_dir = Path(out) if out else Path("reports") / experiment
    try:
        (out_dir / "tables").mkdir(parents=True, exist_ok=True)
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(
            f"cannot write the report folder {out_dir} ({exc.strerror}): choose another with --out"
        ) from None

    sections = build_sections(experiment, store, runs, sweeps)
    import matplotlib.pyplot as plt

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
    title = f"seedvar report: {experiment}"
    if "md" in formats:
        (out_dir / "report.md").write_text(render_markdown(title, sections))
    if "html" in formats:
        (out_dir / "index.html").write_text(render_html(title, sections, images))
    return out_dir


# -- analysis ---------------------------------------------------------------------------------------------
def build_sections(experiment: str, store: Store, runs: list[Run], sweeps: list[Any]) -> list[Section]:
    finished = [r for r in runs if r.status == "FINISHED"]
    passes = pass_table(finished)
    acc = accuracy_table(finished)
    vc = variance_table(finished)
    flips = flip_table(finished)
    answer = Section("The answer", text=answer_sentences(finished, acc, vc, flips))
    settings = Section("Study settings", tables={"settings": settings_table(experiment, finished, sweeps)})
    spread = Section(
        "Accuracy by model and test mode",
        text=[
            "Accuracy in percentage points over every test pass of every trained model; `seed std` is the "
            "spread of per-model means (training randomness alone); the 95% CI of the mean is a bootstrap "
            "over trained models (BCa)."
        ],
        tables={"accuracy": acc},
        figures={"accuracy_distribution": _fig("accuracy_distribution", passes)},
    )
    methods = list(dict.fromkeys(vc.pop("ci_method"))) if not vc.empty else []
    variance = Section(
        "Variance components",
        text=[
            "One-way random-effects model per model and mode: *between* = variance between trained models "
            "(training randomness), *within* = variance across the test passes of one model (test-time "
            "dropout), both in points². Balanced designs use the ANOVA estimator (negative estimates "
            "truncated at 0, flagged); unbalanced ones REML.",
            *(f"95% CIs: {m}." for m in methods),
        ],
        tables={"variance_components": vc} if not vc.empty else {},
        figures={"variance_components": _fig("variance_components", vc)} if not vc.empty else {},
    )
    if vc.empty:
        variance.text = ["Variance components need at least two trained models and two passes per model."]
    flip = Section(
        "Prediction flips",
        text=[
            "`flip rate`: the share of test samples whose predicted class differs between two passes of the "
            "same trained model (mean over pairs of passes and over models). `churn`: the share that differs "
            "between two trained models in eval mode (mean over pairs, on the test samples they share)."
        ],
        tables={"flip_rates": flips},
        figures={"flip_rates": _fig("flip_rates", flips)},
    )
    sections = [answer, settings, spread, variance, flip]
    sources = source_section(finished)
    if sources is not None:
        sections.append(sources)
        answer.text.extend(source_sentences(sources.tables["per_source"]))
    sections.append(comparison_section(finished, acc))
    curves = curve_table(store, finished)
    if not curves.empty:
        sections.append(
            Section("Training curves", figures={"training_curves": _fig("training_curves", curves)})
        )
    maps = map_section(finished)
    if maps is not None:
        sections.append(maps)
    sections.append(failure_section(runs))
    return sections


def _fig(name: str, *args: Any) -> Any:
    from study import figures

    return getattr(figures, name)(*args)


def pass_table(finished: list[Run]) -> pd.DataFrame:
    rows = [
        {"condition": r.condition, "model": r.model, "run": r.name, "mode": mode, "pass": p, "accuracy": a}
        for r in finished
        for mode in r.modes
        for p, a in enumerate(r.accuracy(mode))
    ]
    return pd.DataFrame(rows)


def _groups(finished: list[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs by (condition, mode), in a stable order."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in finished:
        for mode in r.modes:
            groups.setdefault((r.condition, mode), []).append(r)
    return groups


def accuracy_table(finished: list[Run]) -> pd.DataFrame:
    rows = []
    for (cond, mode), group in _groups(finished).items():
        per_pass = np.concatenate([r.accuracy(mode) for r in group])
        means = np.array([r.accuracy(mode).mean() for r in group])
        s = stats.spread(means)
        rows.append(
            {
                "condition": cond,
                "mode": mode,
                "runs": len(group),
                "passes": len(per_pass),
                "mean": per_pass.mean(),
                "std": per_pass.std(ddof=1) if len(per_pass) > 1 else 0.0,
                "seed_std": s.std if len(means) > 1 else 0.0,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "min": per_pass.min(),
                "max": per_pass.max(),
            }
        )
    return pd.DataFrame(rows)


def variance_table(finished: list[Run]) -> pd.DataFrame:
    rows = []
    for (cond, mode), group in _groups(finished).items():
        if len(group) < 2:
            continue
        values = np.concatenate([r.accuracy(mode) for r in group])
        ids = np.concatenate([np.full(len(r.accuracy(mode)), i) for i, r in enumerate(group)])
        if len(values) <= len(group):  # one pass per model: within and between cannot be told apart
            continue
        v = stats.variance_components(values, ids)
        rows.append(
            {
                "condition": cond,
                "mode": mode,
                "models": v.n_groups,
                "passes": v.n_obs,
                "between": v.between,
                "between_ci_low": v.between_ci[0],
                "between_ci_high": v.between_ci[1],
                "within": v.within,
                "within_ci_low": v.within_ci[0],
                "within_ci_high": v.within_ci[1],
                "share_within": 100 * v.share_within,
                "share_within_ci_low": 100 * v.share_within_ci[0],
                "share_within_ci_high": 100 * v.share_within_ci[1],
                "share_between": 100 * v.share_between,
                "method": v.method,
                "truncated": v.truncated,
                "ci_method": v.ci_method,
            }
        )
    return pd.DataFrame(rows)


def _churn(group: list[Run]) -> float:
    """Mean eval-mode churn between pairs of trained models over the test samples both were tested on."""
    values = []
    for i, a in enumerate(group):
        for b in group[i + 1 :]:
            common, ia, ib = np.intersect1d(a.arrays["ids"], b.arrays["ids"], return_indices=True)
            if len(common):
                values.append(stats.churn(a.arrays["eval"][0][ia], b.arrays["eval"][0][ib]))
    return 100 * float(np.mean(values)) if values else float("nan")


def flip_table(finished: list[Run]) -> pd.DataFrame:
    rows = []
    for (cond, mode), group in _groups(finished).items():
        rates = [stats.flip_rate(r.arrays[mode]) for r in group if len(r.arrays[mode]) > 1]
        rows.append(
            {
                "condition": cond,
                "mode": mode,
                "models": len(group),
                "flip_rate": 100 * float(np.mean(rates)) if rates else float("nan"),
                "churn_between_models": _churn(group) if mode == "eval" and len(group) > 1 else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def answer_sentences(
    finished: list[Run], acc: pd.DataFrame, vc: pd.DataFrame, flips: pd.DataFrame
) -> list[str]:
    """The opening paragraph, one per condition: how much the accuracy varies and where it comes from."""
    out = []
    for cond in dict.fromkeys(r.condition for r in finished):
        group = [r for r in finished if r.condition == cond]
        a = acc[acc["condition"] == cond].set_index("mode")
        v = vc[vc["condition"] == cond].set_index("mode") if not vc.empty else pd.DataFrame()
        f = flips[flips["condition"] == cond].set_index("mode")
        same = all(
            "train" in r.arrays
            and "mc_dropout" in r.arrays
            and np.array_equal(r.arrays["train"], r.arrays["mc_dropout"])
            for r in group
        )
        parts = []
        for mode in STOCHASTIC:
            if mode not in a.index or (mode == "mc_dropout" and same):
                continue
            row = a.loc[mode]
            text = (
                f"{MODE_WORDS[mode]} test accuracy of {cond} varies by {row['std']:.2f} points (std over "
                f"{int(row['passes'])} passes of {int(row['runs'])} trained model{'s' if row['runs'] > 1 else ''})"
            )
            if mode in v.index:
                c = v.loc[mode]
                if c["within"] == 0:
                    text += (
                        f"; every {mode} pass of a model gives the same predictions (no dropout is active), "
                        "so all of that spread comes from training randomness"
                    )
                else:
                    text += (
                        f"; {c['share_within']:.0f}% (CI {c['share_within_ci_low']:.0f}-"
                        f"{c['share_within_ci_high']:.0f}%) of that variance comes from test-time dropout, "
                        f"{c['share_between']:.0f}% from training randomness"
                    )
            text += "."
            if mode in f.index and not np.isnan(f.loc[mode, "flip_rate"]) and f.loc[mode, "flip_rate"] > 0:
                within_sd = (
                    np.sqrt(v.loc[mode, "within"])
                    if mode in v.index
                    else np.mean([r.accuracy(mode).std(ddof=1) for r in group])
                )
                text += (
                    f" Testing one trained model again moves its accuracy by {within_sd:.2f} points (std) and "
                    f"changes the predicted class of {f.loc[mode, 'flip_rate']:.2f}% of test samples"
                )
                if "eval" in a.index:
                    gap = row["mean"] - a.loc["eval", "mean"]
                    text += f"; on average it is {abs(gap):.2f} points {'lower' if gap < 0 else 'higher'} than in eval mode"
                text += "."
            if mode == "train" and same:
                text += (
                    " MC dropout gives exactly the same passes: the model has no BatchNorm, so train mode "
                    "only switches dropout on."
                )
            parts.append(text)
        if "eval" in a.index:
            e = a.loc["eval"]
            runs = int(e["runs"])
            flip = f.loc["eval", "flip_rate"] if "eval" in f.index else float("nan")
            if flip == 0 or np.isnan(flip):
                who = f"the same {runs} models give" if runs > 1 else "the model gives"
                text = f"In eval mode {who} identical results on every pass"
            else:
                text = f"In eval mode {flip:.3f}% of predictions still change between passes (nondeterministic kernels)"
            if runs > 1:
                text += f"; across seeds they vary by {e['seed_std']:.2f} points (std; mean {e['mean']:.2f}%)"
            else:
                text += f" (accuracy {e['mean']:.2f}%)"
            parts.append(text + ".")
        out.append(" ".join(parts))
    return out


def settings_table(experiment: str, finished: list[Run], sweeps: list[Any]) -> pd.DataFrame:
    """Parameters shared by every finished run (plus how many runs vary what)."""
    keys = sorted(set().union(*(r.params for r in finished)))
    rows = [{"setting": "experiment", "value": experiment}, {"setting": "sweeps", "value": str(len(sweeps))}]
    for key in keys:
        values = sorted({r.params.get(key, "") for r in finished})
        if key.startswith("seed.") or key == "replicate":
            rows.append({"setting": key, "value": f"{len(values)} distinct values"})
        else:
            rows.append({"setting": key, "value": ", ".join(values)})
    seconds = [r.metrics.get("time.total_seconds", 0.0) for r in finished]
    rows.append({"setting": "finished runs", "value": str(len(finished))})
    rows.append({"setting": "mean seconds per run", "value": f"{np.mean(seconds):.1f}"})
    return pd.DataFrame(rows)


def source_section(finished: list[Run]) -> Section | None:
    """In a one-source-at-a-time study, the eval-accuracy spread that each source causes on its own."""
    varied = [r for r in finished if r.varied != "all" and "eval" in r.arrays]
    if not varied:
        return None
    values = pd.DataFrame(
        [
            {
                "condition": r.condition,
                "source": r.varied,
                "replicate": r.replicate,
                "accuracy": r.accuracy("eval").mean(),
            }
            for r in varied
        ]
    )
    tables = []
    for cond, g in values.groupby("condition", sort=False):
        t = stats.per_source_spread(g["accuracy"].to_numpy(), g["source"].to_numpy())
        t.insert(0, "condition", cond)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    return Section(
        "Sources of training randomness",
        text=[
            "Each row varies one source of randomness across replicates and holds every other at the base "
            "seed; `numerical` repeats identical seeds, so only nondeterministic kernels can move it. "
            "`share_of_sum` is each source's variance over the sum of the sources' variances."
        ],
        tables={"per_source": table},
        figures={"per_source": _fig("per_source", values)},
    )


def source_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per condition ranking the sources of training randomness by the spread each causes."""
    out = []
    for cond, g in table.groupby("condition", sort=False):
        g = g.sort_values("std", ascending=False)
        ranked = ", ".join(f"{r.source} {r.std:.2f} ({100 * r.share_of_sum:.0f}%)" for r in g.itertuples())
        out.append(
            f"Varied one at a time, the sources of training randomness move the eval accuracy of {cond} by "
            f"(std in points, share of the summed variance): {ranked}."
        )
    return out


def comparison_section(finished: list[Run], acc: pd.DataFrame) -> Section:
    """Pairwise tests between conditions (eval accuracy, one value per trained model), and power."""
    samples = {}
    for r in finished:
        if "eval" in r.arrays:
            samples.setdefault(r.condition, []).append(r.accuracy("eval").mean())
    samples = {k: np.array(v) for k, v in samples.items() if len(v) >= 2}
    sec = Section("Comparisons and power")
    power = []
    for cond, vals in samples.items():
        sd = float(np.std(vals, ddof=1))
        power.append(
            {
                "condition": cond,
                "seed_std": sd,
                "replicates_for_1_point": stats.replicates_needed(sd, 1.0),
                "replicates_for_0.5_point": stats.replicates_needed(sd, 0.5),
            }
        )
    if power:
        sec.text.append(
            "Replicates per model needed to detect a difference of 1 (or 0.5) accuracy points between two "
            "models with 80% power at alpha 0.05, at the observed seed-to-seed spread in eval mode."
        )
        sec.tables["power"] = pd.DataFrame(power)
    if len(samples) >= 2:
        table = stats.compare_all(samples)
        sec.tables["comparisons"] = table
        names = list(samples)
        diff = pd.DataFrame(0.0, index=names, columns=names)
        pv = pd.DataFrame(np.nan, index=names, columns=names)
        for _, row in table.iterrows():
            diff.loc[row["a"], row["b"]], diff.loc[row["b"], row["a"]] = row["diff"], -row["diff"]
            pv.loc[row["a"], row["b"]] = pv.loc[row["b"], row["a"]] = row["welch_p_holm"]
        sec.text.append(
            "Welch t-test, Mann-Whitney U, bootstrap CI of the difference of means, P(A > B), Holm-adjusted "
            "p-values across all pairs; Levene/Brown-Forsythe for whether the spreads differ."
        )
        sec.figures["comparison_matrix"] = _fig("comparison_matrix", diff, pv)
    spread_rows = []
    for cond in dict.fromkeys(r.condition for r in finished):
        group = [r for r in finished if r.condition == cond]
        ev = np.array([r.accuracy("eval").mean() for r in group if "eval" in r.arrays])
        for mode in STOCHASTIC:
            tr = np.concatenate([r.accuracy(mode) for r in group if mode in r.arrays] or [np.array([])])
            if len(ev) >= 2 and len(tr) >= 2:
                stat, p = stats.spread_test(ev, tr)
                spread_rows.append(
                    {
                        "condition": cond,
                        "eval_std": ev.std(ddof=1),
                        f"{mode}_std": tr.std(ddof=1),
                        "mode": mode,
                        "brown_forsythe": stat,
                        "p": p,
                    }
                )
    if spread_rows:
        sec.tables["spread_tests"] = pd.DataFrame(spread_rows)
    if not sec.tables:
        sec.text.append("Comparisons need at least two trained models per condition.")
    return sec


def curve_table(store: Store, finished: list[Run]) -> pd.DataFrame:
    rows = []
    for r in finished:
        for metric in ("loss", "acc"):
            for m in store.call(store.client.get_metric_history, r.run_id, f"train.{metric}"):
                rows.append(
                    {
                        "condition": r.condition,
                        "run": r.name,
                        "epoch": m.step,
                        "metric": metric,
                        "value": m.value * (100 if metric == "acc" else 1),
                    }
                )
    if not rows:
        return pd.DataFrame()
    df = (
        pd.DataFrame(rows)
        .pivot_table(index=["condition", "run", "epoch"], columns="metric", values="value")
        .reset_index()
    )
    return df


def map_section(finished: list[Run]) -> Section | None:
    """Classification maps of one hyperspectral model: eval mode vs two train-mode passes."""
    for r in finished:
        if {"gt", "coords", "eval"} <= set(r.arrays) and any(m in r.arrays for m in STOCHASTIC):
            mode = "train" if "train" in r.arrays else "mc_dropout"
            preds = r.arrays[mode]
            if len(preds) < 2:
                continue
            fig = _fig(
                "classification_maps",
                r.arrays["gt"],
                r.arrays["coords"],
                r.arrays["labels"],
                r.arrays["eval"][0],
                preds[0],
                preds[1],
                f"{r.name}: test pixels ({mode} mode passes 1 and 2)",
            )
            flipped = int((preds[0] != preds[1]).sum())
            return Section(
                "Classification maps",
                text=[
                    f"Model {r.name}: {flipped} of {preds.shape[1]} test pixels change class between two "
                    f"{mode}-mode passes of the same trained model; in eval mode none can."
                ],
                figures={"classification_maps": fig},
            )
    return None


def failure_section(runs: list[Run]) -> Section:
    bad = [r for r in runs if r.status != "FINISHED"]
    if not bad:
        return Section("Failed and unfinished runs", text=["None: every run finished."])
    table = pd.DataFrame(
        [
            {
                "run": r.name,
                "status": r.status,
                "reason": r.failure or "(no reason recorded)",
                "run_id": r.run_id,
            }
            for r in bad
        ]
    )
    return Section(
        "Failed and unfinished runs",
        text=[f"{len(bad)} run(s) did not finish; they are left out above."],
        tables={"failed_runs": table},
    )


# -- rendering --------------------------------------------------------------------------------------------
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
