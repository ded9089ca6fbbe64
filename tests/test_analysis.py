"""The report's pipeline on synthetic runs, without MLflow: tables, the answer's branches, rendering."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import N, dropout_model, noisy, run, study

from seedvar.analysis import glance, registry, render, sentences, setup
from seedvar.analysis.load import LoadedRun
from seedvar.analysis.report import build_sections


def test_accuracy_table_pools_every_pass_and_seed_spread():
    rng = np.random.default_rng(1)
    runs = [dropout_model(rng, r) for r in range(4)]
    t = registry.of_study(study(*runs))
    acc = t.accuracy.set_index(["condition", "mode"])
    every = np.concatenate([r.accuracy("train") for r in runs])
    assert acc.loc[("net", "train"), "mean"] == pytest.approx(every.mean())
    assert acc.loc[("net", "train"), "std"] == pytest.approx(every.std(ddof=1))
    means = [r.accuracy("eval").mean() for r in runs]
    assert acc.loc[("net", "eval"), "seed_std"] == pytest.approx(np.std(means, ddof=1))
    assert acc.loc[("net", "eval"), "passes"] == 8 and acc.loc[("net", "train"), "runs"] == 4
    vc = t.variance_components.set_index(["condition", "mode"])
    assert vc.loc[("net", "eval"), "within"] == 0  # eval passes are identical
    assert vc.loc[("net", "train"), "within"] > 0


def test_answer_when_train_mode_equals_mc_dropout():
    rng = np.random.default_rng(2)
    runs = [dropout_model(rng, r) for r in range(3)]
    (text,) = sentences.answer(registry.of_study(study(*runs)))
    assert text.startswith("Train-mode test accuracy of net varies by")
    assert "MC dropout gives exactly the same passes" in text
    assert "MC-dropout test accuracy" not in text  # said once, not twice
    assert "In eval mode the same 3 models give identical results on every pass" in text
    assert "BatchNorm batch statistics" not in text and "Degenerate" not in text
    assert re.search(
        r"Of the \d+\.\d\d-point seed-to-seed std in eval mode, the finite test set \(400 samples", text
    )


def test_answer_when_mc_dropout_differs_from_train_mode():
    rng = np.random.default_rng(3)
    runs = [dropout_model(rng, r, batchnorm=True) for r in range(3)]
    (text,) = sentences.answer(registry.of_study(study(*runs)))
    assert "Train-mode test accuracy" in text and "MC-dropout test accuracy" in text
    assert "exactly the same passes" not in text
    t = registry.of_study(study(*runs))
    g = t.mode_gaps.set_index("part")
    train = np.array([r.accuracy("train").mean() for r in runs])
    mc = np.array([r.accuracy("mc_dropout").mean() for r in runs])
    assert g.loc["batchnorm", "mean"] == pytest.approx(np.mean(train - mc))
    assert (
        f"BatchNorm batch statistics (train - mc_dropout) account for {g.loc['batchnorm', 'mean']:+.2f}"
        in text
    )
    assert f"dropout (mc_dropout - eval) for {g.loc['dropout', 'mean']:+.2f}" in text


def test_answer_with_nondeterministic_eval_passes():
    rng = np.random.default_rng(4)
    runs = []
    for r in range(3):
        m = dropout_model(rng, r)
        m.preds.passes["eval"] = noisy(rng, 0.05, 2)  # two eval passes that disagree
        runs.append(m)
    (text,) = sentences.answer(registry.of_study(study(*runs)))
    assert "of predictions still change between passes (nondeterministic kernels)" in text


def test_one_run_per_condition_and_a_failed_run():
    rng = np.random.default_rng(5)
    only = dropout_model(rng, 0)
    failed = run("net-r1", None, replicate=1, status="FAILED", failure="RuntimeError: out of memory")
    s = study(only, failed)
    t = registry.of_study(s)
    assert t.variance_components.empty and t.power.empty and t.comparisons.empty
    (text,) = sentences.answer(t)
    assert "In eval mode the model gives identical results on every pass (accuracy" in text
    assert list(t.failed_runs["reason"]) == ["RuntimeError: out of memory"]
    sections = {sec.title: sec for sec in build_sections(s)}
    assert sections["Variance components"].text == [
        "Variance components need at least two trained models and two passes per model."
    ]
    assert "failed_runs" in sections["Failed and unfinished runs"].tables
    md = render.render_markdown("r", list(sections.values()))
    assert "RuntimeError: out of memory" in md and "## The answer" in md


def test_two_conditions_are_compared_and_churn_is_between_models():
    rng = np.random.default_rng(6)
    runs = [dropout_model(rng, r, model="a") for r in range(3)] + [
        dropout_model(rng, r, model="b") for r in range(3)
    ]
    t = registry.of_study(study(*runs))
    assert list(t.comparisons[["a", "b"]].iloc[0]) == ["a", "b"]
    flips = t.flip_rates.set_index(["condition", "mode"])
    assert flips.loc[("a", "eval"), "flip_rate"] == 0
    assert 0 < flips.loc[("a", "eval"), "churn_between_models"] < 100
    assert np.isnan(flips.loc[("a", "train"), "churn_between_models"])
    curves = t.curves
    assert set(curves.columns) >= {"condition", "run", "epoch", "loss", "acc"}
    assert curves["acc"].max() == pytest.approx(80.0)  # accuracy in points
    assert isinstance(t.settings, pd.DataFrame) and "seed.init" in set(t.settings["setting"])


def collapsed_model(replicate: int, model: str = "bn") -> LoadedRun:
    """A model whose BatchNorm statistics never settled: eval predicts one class; train mode does better."""
    rng = np.random.default_rng(100 + replicate)
    ev = np.zeros((2, N), np.int16)
    train = noisy(rng, 0.7, 4)
    return run(
        f"{model}-r{replicate}",
        {"eval": ev, "train": train, "mc_dropout": ev[:1].repeat(4, 0)},
        model=model,
        replicate=replicate,
    )


def test_degenerate_condition_is_flagged_and_left_out_of_power_and_rankings():
    rng = np.random.default_rng(7)
    runs = [collapsed_model(r) for r in range(3)] + [dropout_model(rng, r, model="ok") for r in range(3)]
    t = registry.of_study(study(*runs))
    assert t.degenerate_conditions == ["bn"]
    flags = t.degenerate.set_index(["condition", "mode"])
    assert flags.loc[("bn", "eval"), "one_class"] == 3 and flags.loc[("bn", "eval"), "tied"]
    assert not flags.loc[("ok", "eval"), "degenerate"]
    assert list(t.power["condition"]) == ["ok"] and t.comparisons.empty
    text = " ".join(sentences.answer(t))
    assert "Degenerate: bn in eval mode 3 of 3 trained models are at chance level" in text
    assert (
        "3 of 3 predict a single class" in text and "No power analysis or ranking is drawn from it." in text
    )
    sections = {sec.title: sec for sec in build_sections(study(*runs))}
    each = " ".join(
        sections["Each condition"].text
    )  # several conditions: each one's paragraph after the answer
    assert "BatchNorm batch statistics (train - mc_dropout) account for" in each
    assert "Left out as degenerate: bn" in " ".join(sections["Comparisons and power"].text)
    assert "Comparisons need at least two conditions that are not degenerate" in text
    headline, _ = glance.answer(t)  # the first screen says it too
    assert "Degenerate (left out of comparisons): bn." in headline


def test_sources_against_all_give_ratios_and_say_when_intervals_overlap():
    rng = np.random.default_rng(8)
    runs = [dropout_model(rng, r) for r in range(4)]
    for source in ("split", "init"):
        for r in range(1, 5):
            m = dropout_model(rng, r)
            m.varied, m.name = source, f"net-{source}-r{r}"
            runs.append(m)
    t = registry.of_study(study(*runs))
    ps = t.per_source.set_index("source")
    assert list(ps.index) == ["all", "split", "init"] and ps.loc["all", "ratio_to_all"] == 1.0
    values = t.source_values
    assert len(t.accuracy) and t.accuracy.set_index("mode").loc["eval", "runs"] == 4  # `all` runs only
    ref = values[values["source"] == "all"]["accuracy"]
    split = values[values["source"] == "split"]["accuracy"]
    assert ps.loc["split", "ratio_to_all"] == pytest.approx(split.var() / ref.var())
    text = sentences.source_sentences(t.per_source)[0]
    assert "as a ratio with a 95% F interval (4 replicates each): split" in text
    assert "All intervals overlap, so these replicates do not rank the sources." in text
    assert "share" not in text


def test_the_same_runs_give_the_same_figures_byte_for_byte():
    """A report is reproducible itself: the strip plots' jitter does not follow numpy's global state."""
    import io

    from seedvar.analysis import figures

    rng = np.random.default_rng(12)
    passes = registry.of_study(
        study(*[dropout_model(rng, r, model=m) for m in "ab" for r in range(3)])
    ).passes
    drawn = []
    for seed in (1, 2):
        np.random.seed(seed)  # what a user's code before the report may have done
        buf = io.BytesIO()
        figures.accuracy_distribution(passes).savefig(buf, format="png")
        drawn.append(buf.getvalue())
    assert drawn[0] == drawn[1]


@pytest.mark.slow
def test_tables_render_rounded_merged_and_narrow_while_csvs_keep_every_digit(tmp_path):
    rng = np.random.default_rng(9)
    runs = [dropout_model(rng, r, model=m) for m in ("a", "b", "c") for r in range(3)]
    s = study(*runs)
    sections = build_sections(s)
    render.write(tmp_path, "r", sections, ["html", "md"])
    page = (tmp_path / "index.html").read_text()
    md = (tmp_path / "report.md").read_text()
    for text in (re.sub(r"data:image/png;base64,[^']*", "", page), md):
        assert not re.search(r"\d\.\d{5,}", text)  # no 0.9801756259006866 on the page
        assert "(-" not in text and not re.search(r"\bnan\b", text.lower())
    comparisons = pd.read_csv(tmp_path / "tables" / "comparisons.csv")
    assert re.search(r"\d\.\d{6,}", (tmp_path / "tables" / "comparisons.csv").read_text())  # full precision
    shown = render.display(comparisons)
    assert len(shown) >= 2 and all(p.shape[1] <= render.MAX_COLUMNS for p in shown)
    assert all(list(p.columns[:2]) == ["a", "b"] for p in shown)
    assert any("diff 95% CI" in p.columns for p in shown) and not any(
        "diff_ci_low" in p.columns for p in shown
    )
    assert not (tmp_path / "tables" / "spread_tests.csv").exists()  # passes nested in models: no such test
    assert list(
        render.display(pd.DataFrame({"epoch": [1.0, 2.0], "x": [0.123456, np.nan]}))[0].iloc[:, 0]
    ) == [
        "1",
        "2",
    ]


def test_settings_table_shows_shared_values_and_counts_per_run_ones():
    rng = np.random.default_rng(5)
    runs = [dropout_model(rng, r) for r in range(5)]
    for r in runs:  # per run: a text fingerprint and a numeric pixel count; shared: the window
        r.params.update({"data.fingerprint": f"ab{r.replicate:062x}", "data.n_train": str(100 + r.replicate)})
        r.params["data.window"] = "11"
    settings = setup.settings_table(study(*runs)).set_index("setting")["value"]
    assert settings["data.window"] == "11"
    assert settings["data.fingerprint"] == "5 distinct values"  # not five hashes in one cell
    assert settings["data.n_train"] == "5 distinct values, 100 to 104"
    assert settings["seed.init"] == "5 distinct values"
    assert settings["finished runs"] == "5"


@pytest.mark.parametrize("seed", [0, 1])  # 0: the test set's estimate exceeds the spread; 1: it does not
def test_test_noise_sentence_when_models_differ_only_by_the_test_set(seed):
    rng = np.random.default_rng(seed)
    runs = []
    for r in range(6):  # every model wrong on a fresh 10% of the samples: no distribution-level spread
        ev, tr = noisy(rng, 0.1, 1), noisy(rng, 0.12, 4)
        runs.append(
            run(f"net-r{r}", {"eval": np.repeat(ev, 2, 0), "train": tr, "mc_dropout": tr.copy()}, replicate=r)
        )
    t = registry.of_study(study(*runs))
    (text,) = sentences.answer(t)
    share = t.test_noise.iloc[0]["test_set_share"]
    assert (share >= 100) == (seed == 0)
    if share >= 100:
        assert "the models' own differences cannot be told apart from test-set noise" in text
        assert re.search(r"its share of the variance CI \d+(\.\d+)? to 100%", text)  # never 100% bare
    else:
        assert "of the variance, CI" in text
    percents = [float(p) for p in re.findall(r"(?<!\d)(-?\d+(?:\.\d+)?)%", text)]
    assert percents and all(0 <= p <= 100 for p in percents)  # no share outside 0-100% is ever written


def condition_runs(rng: np.random.Generator, model: str, error: float, seeds: int = 4) -> list[LoadedRun]:
    """Trained models of one condition: eval, train and MC-dropout passes around an error rate."""
    out = []
    for r in range(seeds):
        e = error + rng.normal(0, 0.005)
        ev = noisy(rng, e, 1)
        train = noisy(rng, e + 0.02, 5)
        out.append(
            run(
                f"{model}-r{r}",
                {"eval": np.repeat(ev, 2, 0), "train": train, "mc_dropout": train.copy()},
                model=model,
                replicate=r,
            )
        )
    return out


def test_several_conditions_open_with_one_table_and_what_the_seeds_tell_apart():
    rng = np.random.default_rng(11)
    runs = (
        condition_runs(rng, "near_a", 0.05)
        + condition_runs(rng, "near_b", 0.052)
        + condition_runs(rng, "far", 0.3)
    )
    s = study(*runs)
    t = registry.of_study(s)
    c = t.conditions
    assert list(c["condition"]) == ["near_a", "near_b", "far"]  # best eval accuracy first
    assert list(c.columns[:4]) == ["condition", "seeds", "eval_mean", "eval_ci_low"]
    assert {
        "train_minus_eval",
        "batchnorm_part",
        "dropout_part",
        "dropout_share",
        "flip_rate",
        "test_set_share",
    } <= set(c.columns)
    for share in ("dropout_share", "test_set_share"):  # every share with its interval, around it
        lo, hi, mid = c[f"{share}_ci_low"], c[f"{share}_ci_high"], c[share]
        ok = mid.isna() | ((lo <= mid + 1e-9) & (mid <= hi + 1e-9) & (lo >= 0) & (hi <= 100))
        assert ok.all(), c[["condition", share, f"{share}_ci_low", f"{share}_ci_high"]]
    assert list(c["seeds"]) == [4, 4, 4]
    groups = dict(zip(c["condition"], c["group"], strict=True))
    assert (
        groups["far"] not in (groups["near_a"], groups["near_b"])
        and groups["near_a"] == groups["near_b"] == "a"
    )
    text = " ".join(sentences.answer(t))
    assert "3 conditions, 4 seeds each" in text
    assert (
        "tell 2 of 3 pairs apart" in text
        and "Groups the seeds cannot separate: a: near_a and near_b." in text
    )
    assert re.search(r"Told apart: near_a above far \(\+\d+\.\d\d points\) and near_b above far", text)
    assert re.search(
        r"The closest pair the seeds do not separate, near_a and near_b, lie \d\.\d\d points apart", text
    )
    assert "MC dropout gives exactly the train-mode passes in every condition" in text  # said once
    assert "Train-mode test accuracy of" not in text  # each condition's paragraph: its own section
    sections = build_sections(s)
    glance = sections[0]  # the first screen: a headline, its numbers and their figure
    assert glance.headline.startswith(
        "3 conditions, 4 seeds each: near_a scores highest"
    ) or glance.headline.startswith("3 conditions, 4 seeds each: near_b scores highest")
    assert "the seeds tell 2 of 3 pairs apart" in glance.headline
    assert [b.table for b in glance.bullets] == [
        "conditions",
        "conditions",
        "comparisons",
        "variance_components",
    ]
    assert all(re.search(r"\(95% CI [-+\d.]+(-| to )[-+\d.]+", b.value) for b in glance.bullets)
    assert list(glance.figures) == ["intervals"]
    assert (
        sections[1].title == "The answer"
        and list(sections[1].tables) == ["conditions"]
        and sections[1].tables_first
        and sections[1].answer
    )
    assert sections[2].title == "Each condition" and len(sections[2].text) == 3
    md = render.render_markdown("r", sections)
    answer = md[md.index("## The answer") : md.index("## Each condition")]
    assert answer.index("| condition") < answer.index("3 conditions, 4 seeds each")  # the table opens it
    assert answer.count("| condition") == 1  # one table, never split, however many columns


def test_one_condition_keeps_its_paragraph_and_tight_shares_keep_their_digits():
    rng = np.random.default_rng(12)
    runs = condition_runs(rng, "solo", 0.1, seeds=5)
    t = registry.of_study(study(*runs))
    (text,) = sentences.answer(t)
    assert text.startswith("Train-mode test accuracy of solo varies by") and t.conditions.shape[0] == 1
    sections = build_sections(study(*runs))
    assert [sec.title for sec in sections][:3] == ["At a glance", "The answer", "Study settings"]
    glance = sections[0]
    assert (
        glance.headline.startswith("solo scores ") and "tested in train mode it varies by" in glance.headline
    )
    assert [b.table for b in glance.bullets] == ["accuracy", "variance_components", "mode_gaps", "test_noise"]
    share = t.variance_components.set_index("mode").loc["train"]
    d = sentences.share_decimals(share["share_within_ci_low"], share["share_within_ci_high"])
    assert glance.bullets[1].value == (
        f"{share['share_within']:.{d}f}% (95% CI {share['share_within_ci_low']:.{d}f}-"
        f"{share['share_within_ci_high']:.{d}f}%)"
    )
    assert sections[2].folded  # the settings: one click away
    assert sentences.share_decimals(0.6, 1.1) == 1 and sentences.share_decimals(0, 2) == 0
    assert sentences.share_decimals(0.61, 0.65) == 2
    assert not re.search(r"(\d+)% \(CI \1-\1%\)", text)  # never "1% (CI 1-1%)"


def test_equally_close_pairs_are_named_together_with_the_most_seeds_either_needs():
    from seedvar.analysis import conditions

    rng = np.random.default_rng(11)
    base = rng.normal(0, 1, 4)
    samples = {"a": 80 + base, "b": 81 + base, "c": 90 + 2 * base, "d": 91 + 2 * base}
    comps = conditions.comparisons(samples)
    apart = [
        (a, b) for a, b in zip(comps["a"], comps["b"], strict=True) if {a, b} not in ({"a", "b"}, {"c", "d"})
    ]
    spread = conditions.spread_of(samples)
    text = conditions.closest_pair_sentence(comps, apart, conditions.ACCURACY, spread)
    assert text.startswith(
        "The closest pairs the seeds do not separate (a and b; c and d) lie 1.00 points apart"
    )
    assert "would tell each of them apart" in text
    need = max(conditions.pair_replicates(spread.pair(a, b), 1.0, len(comps)) for a, b in ("ab", "cd"))
    assert f"about {need:,} seeds per condition" in text  # the noisier pair's need
    # sized at Browne's bound of a std, never at the observed one: more seeds than the observed std asks
    pooled = float(np.sqrt(np.mean([np.var(v, ddof=1) for v in samples.values()])))
    observed = conditions.pair_replicates(pooled, 1.0, len(comps))
    assert need > observed and spread.how() in text
    # stds 1 and 2 over 4 seeds each are compatible (Bartlett): one std pooled over the four conditions
    assert spread.pooled and spread.pair("a", "b") == spread.pair("c", "d")


# The registry: a statistic is one function and one entry


def metric_frame() -> pd.DataFrame:
    """A metric of runs seedvar did not train: two conditions of four seeds."""
    return pd.DataFrame(
        {
            "model": ["a"] * 4 + ["b"] * 4,
            "seed": list(range(4)) * 2,
            "acc": [0.91, 0.92, 0.9, 0.93, 0.8, 0.82, 0.81, 0.79],
        }
    )


def test_every_entry_names_a_section_and_inputs_its_kinds_have() -> None:
    """A typo in an entry's section or inputs would drop its table silently: each is held to the kinds it is
    made for, on a real study and a real metric."""
    from seedvar.analysis.foreign import from_frame
    from seedvar.analysis.pipeline import KINDS

    rng = np.random.default_rng(3)
    made = {
        "study": registry.of_study(study(*[dropout_model(rng, r) for r in range(3)])),
        "metric": registry.of_metric(from_frame(metric_frame(), "acc")),
    }
    assert set(made) == set(KINDS)
    names = [(e.name, k) for e in registry.TABLES for k in e.kinds]
    assert len(names) == len(set(names)), "one entry per name and kind"
    for kind, t in made.items():
        parts = {p.key for p in registry.PARTS if kind in p.kinds}
        for entry in t.entries():
            assert entry.part is None or entry.part in parts, (kind, entry.name, entry.part)
            inputs = entry.inputs + (entry.plot.inputs if entry.plot else ())
            assert all(i in t for i in inputs), (kind, entry.name, [i for i in inputs if i not in t])


def test_a_new_statistic_is_one_function_and_one_entry(monkeypatch, tmp_path) -> None:
    """The README's example: a function over the one sample shape, one entry naming its section. It is
    computed once, written as tables/<name>.csv and shown in its section, in a study's report and a
    metric's alike."""
    from seedvar.analysis.pipeline import Table
    from seedvar.analysis.report import MetricSource, build_report
    from seedvar.stats.samples import Samples

    calls = []

    def seed_range(samples: Samples) -> pd.DataFrame:
        calls.append(1)
        rows = [
            {"condition": c.condition, "mode": c.mode, "seed_range": float(np.ptp(c.means()))}
            for c in samples.values()
        ]
        return pd.DataFrame(rows)

    entry = Table("seed_range", seed_range, ("samples",), "values")
    monkeypatch.setattr(registry, "TABLES", (*registry.TABLES, entry))

    rng = np.random.default_rng(4)
    runs = [dropout_model(rng, r) for r in range(3)]
    sections = registry.build_sections(registry.of_study(study(*runs)))
    (values,) = [s for s in sections if "seed_range" in s.tables]
    assert values.title == "Accuracy by model and test mode" and len(calls) == 1
    got = values.tables["seed_range"].set_index("mode")["seed_range"]
    means = [r.accuracy("eval").mean() for r in runs]
    assert got["eval"] == pytest.approx(max(means) - min(means))

    built = build_report(
        None, metric=MetricSource("acc", frame=metric_frame()), out=tmp_path / "m", formats=["md"]
    )
    written = pd.read_csv(tmp_path / "m" / "tables" / "seed_range.csv").set_index("condition")["seed_range"]
    assert written.to_dict() == pytest.approx({"a": 0.03, "b": 0.03})
    assert "seed_range" in built.tables and "seed_range" in (tmp_path / "m" / "report.md").read_text()


def test_tables_are_computed_once_and_an_input_cannot_shadow_a_table() -> None:
    from seedvar.analysis.pipeline import STUDY, Table, Tables

    calls = []
    entries = [
        Table("a", lambda x: calls.append("a") or x + 1, ("x",)),
        Table("b", lambda a: a * 2, ("a",)),
        Table("c", lambda a, b: a + b, ("a", "b")),
    ]
    t = Tables(STUDY, entries, x=1)
    assert (t.c, t["b"], t.a) == (6, 4, 2) and calls == ["a"]
    with pytest.raises(KeyError, match="no table or input 'd'"):
        t["d"]
    with pytest.raises(ValueError, match="one name, one thing"):
        Tables(STUDY, entries, a=1)
