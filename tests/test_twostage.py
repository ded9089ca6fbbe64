"""Enough seeds, decided by the data: Stein's two-stage rule (seedvar.stats.twostage) and two-stage sweeps."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower
from sweeps import expected_n, start_sweep, write_spec

import seedvar
from seedvar.cli import main
from seedvar.errors import UserError
from seedvar.plan import expand, load_study
from seedvar.record import schema
from seedvar.record.reader import child_runs, latest_finished
from seedvar.record.store import Store
from seedvar.stats.power import replicates_needed, upper_std
from seedvar.stats.twostage import (
    Target,
    decidable,
    decide,
    difference_replicates,
    stein_interval,
    stein_replicates,
)


def test_stein_n_is_the_formula_with_the_pilot_as_floor_and_the_cap_said():
    t2 = stats.t.ppf(0.975, 2)  # n0 = 3
    assert stein_replicates(1.5, 3, 1.0) == math.ceil((t2 * 1.5 / 1.0) ** 2) == 42
    assert stein_replicates(0.1, 3, 1.0) == 3  # a tight pilot is enough on its own
    assert stein_replicates(0.0, 5, 0.5) == 5
    (d,) = decide({"a": [90.0, 91.0, 92.0]}, Target(ci=1.0, pilot=3, max_replicates=20)).values()
    assert (d.n0, d.s, d.wanted, d.n, d.capped, d.more) == (3, 1.0, math.ceil((t2 * 1.0) ** 2), 19, False, 16)
    assert d.half_width == pytest.approx(t2 / math.sqrt(19)) and d.half_width <= 1.0
    (c,) = decide({"a": [90.0, 92.0, 94.0]}, Target(ci=1.0, pilot=3, max_replicates=20)).values()
    assert (c.wanted, c.n, c.capped) == (math.ceil((t2 * 2.0) ** 2), 20, True) and c.half_width > 1.0


def test_stein_interval_covers_the_true_mean_95_percent_of_the_time():
    """Simulated pilots of 3 models with a known seed std: the rule's n, then the rest, then the interval."""
    rng = np.random.default_rng(1945)
    mu, sigma, target = 95.0, 1.5, Target(ci=1.0, pilot=3, max_replicates=10_000)
    trials, covered, sizes = 4000, 0, []
    for _ in range(trials):
        pilot = rng.normal(mu, sigma, 3)
        d = decide({"c": pilot}, target)["c"]
        values = np.concatenate([pilot, rng.normal(mu, sigma, d.n - 3)])
        _, low, high = stein_interval(values, d)
        covered += low <= mu <= high
        assert high - low <= 2 * target.ci + 1e-9  # fixed width: never wider than asked
        sizes.append(d.n)
    assert covered / trials >= 0.93, covered / trials
    assert 0.93 <= covered / trials <= 0.97  # exact, not conservative: about 95%
    assert np.median(sizes) > 3  # the second stage did the work


def test_difference_target_gives_power_at_the_holm_level_over_all_pairs():
    """Compatible pilot stds (Bartlett) are pooled into one std and one n for every condition; stds that
    are not compatible size each pair at its own pooled std, and a condition takes its worst pair."""
    stds = {"a": 1.0, "b": 1.0, "c": 2.0}
    plain = Target(diff=1.5, std="pilot")
    need = difference_replicates(stds, 1.5, 3, plain)
    pooled = math.sqrt((1.0 + 1.0 + 4.0) / 3)  # 2 df each at n0 = 3: Bartlett cannot tell them apart
    assert need == dict.fromkeys(stds, replicates_needed(pooled, 1.5, alpha=0.05 / 3))
    power = TTestIndPower()
    assert power.power(effect_size=1.5 / pooled, nobs1=need["a"], alpha=0.05 / 3, ratio=1.0) >= 0.8
    two = difference_replicates({"a": 1.0, "b": 1.0}, 1.5, 3, plain)
    assert two["a"] < need["a"]  # one pair: alpha 5%, not 5%/3
    # stds 10x apart at n0 = 10 are not compatible: pair by pair, every condition in a pair with the noisy c
    apart = {"a": 1.0, "b": 1.0, "c": 10.0}
    per_pair = difference_replicates(apart, 1.5, 10, plain)
    noisy = replicates_needed(math.sqrt((1.0 + 100.0) / 2), 1.5, alpha=0.05 / 3)
    assert per_pair == {"a": noisy, "b": noisy, "c": noisy}
    for a, b in (("a", "c"), ("b", "c")):  # (a, b) gets far more than it needs (statsmodels: nan there)
        sd = math.sqrt((apart[a] ** 2 + apart[b] ** 2) / 2)
        n = min(per_pair[a], per_pair[b])
        assert power.power(effect_size=1.5 / sd, nobs1=n, alpha=0.05 / 3, ratio=1.0) >= 0.8
    # by default the pooled std is sized at Browne's 80% upper bound (6 df: 3 conditions at n0 = 3)
    bound = difference_replicates(stds, 1.5, 3, Target(diff=1.5))
    assert bound["a"] == replicates_needed(upper_std(pooled, 6), 1.5, alpha=0.05 / 3) > need["a"]


def test_a_pilot_whose_models_all_scored_alike_is_floored_at_the_test_sets_resolution():
    """500 test samples: a 0.2-point grid. Three models at exactly 25.40% gave s = 0, n = n0 and a
    half-width of 0; the floor 0.2 / sqrt(12) gives a half-width that is > 0 and says so."""
    (d,) = decide({"a": [25.4, 25.4, 25.4]}, Target(ci=0.5, pilot=3), {"a": 0.2}).values()
    floor = 0.2 / math.sqrt(12)
    assert (d.s, d.floor, d.s_used) == (0.0, pytest.approx(floor), pytest.approx(floor))
    assert d.n == 3 and d.half_width > 0
    assert d.half_width == pytest.approx(stats.t.ppf(0.975, 2) * floor / math.sqrt(3))
    _, low, high = stein_interval([25.4] * 3, d)
    assert low < 25.4 < high
    (free,) = decide({"a": [25.4, 25.4, 25.4]}, Target(ci=0.5, pilot=3)).values()
    assert free.half_width == 0.0  # without a resolution there is nothing to floor at


def test_the_pilot_gate_is_one_rule_for_the_sweep_and_the_report():
    pilots = {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0]}
    complete, waiting = decidable(pilots, Target(ci=1.0))
    assert list(complete) == ["a"] and waiting == {"b": "pilot 2/3 finished"}
    complete, waiting = decidable(pilots, Target(diff=1.0))
    assert complete == {} and waiting["a"].startswith("waits for the other conditions' pilots")


def test_a_target_recorded_before_the_upper_bound_reads_as_sized_at_the_pilot_std():
    old = '{"ci": 0.0, "diff": 1.0, "max_replicates": 100, "mode": "eval", "pilot": 3}'
    assert Target.from_json(old).std == "pilot"
    assert Target.from_json(Target(diff=1.0).to_json()) == Target(diff=1.0, std="upper80")
    assert Target.from_json("nonsense") is None


def test_a_target_needs_a_pilot_of_three_and_ordinary_seeds(tmp_path):
    spec = write_spec(tmp_path / "s.toml", "bad", epochs=1, replicates=2)
    with pytest.raises(UserError, match=r"seeds.replicates: is the pilot of a two-stage sweep .* at least 3"):
        seedvar.sweep(spec, dry_run=True, target_ci=1.0)
    with pytest.raises(UserError, match="seeds.target_mode: 'exam' is not among the tested modes"):
        seedvar.sweep(spec, dry_run=True, replicates=3, target_ci=1.0, target_mode="exam")
    with pytest.raises(UserError, match='use vary = "all"'):
        seedvar.sweep(spec, dry_run=True, replicates=3, target_ci=1.0, **{"seeds.vary": ["init"]})
    with pytest.raises(UserError, match="seeds.max_replicates"):
        seedvar.sweep(spec, dry_run=True, replicates=3, target_diff=1.0, max_replicates=2)


@pytest.mark.slow
def test_a_two_stage_sweep_trains_exactly_the_n_its_pilot_asks_for(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/m/mlflow.db"
    spec = write_spec(tmp_path / "two.toml", "two", epochs=1, replicates=3)
    result = seedvar.sweep(spec, tracking_uri=uri, progress=False, jobs=1, target_ci=12.0, max_replicates=9)
    out = capsys.readouterr().out
    n, s = expected_n(uri, "two", 12.0, 9)
    assert n > 3, f"the synthetic study's pilot std {s:.2f} should ask for a second stage"
    store = Store(uri, create=False)
    finished = latest_finished(child_runs(store, store.experiment_id("two", create=False)))
    assert sorted(r.replicate for r in finished.values()) == list(range(n))
    assert [o.status for o in result.outcomes] == ["FINISHED"] * n  # each trained once
    (d,) = result.decisions.values()
    assert (d.n, round(d.s, 9)) == (n, round(s, 9))
    assert "[pilot 3/3] FINISHED" in out and f"[stage 2 {n - 3}/{n - 3}] FINISHED" in out
    assert f"hybridsn: pilot 3/3, seed std {s:.2f} points in eval mode, then {n - 3} more (n = {n}" in out
    eval_row = result.summary[result.summary["mode"] == "eval"].iloc[0]
    assert eval_row["runs"] == n and eval_row["target"].startswith(("reached: n=", "capped at n="))

    # the same plan as a plain sweep of n replicates: nothing is trained again
    plain = seedvar.sweep(spec, tracking_uri=uri, progress=False, jobs=1, replicates=n)
    assert plain.outcomes == [] and plain.parent_id is None
    again = seedvar.sweep(spec, tracking_uri=uri, progress=False, jobs=1, target_ci=12.0, max_replicates=9)
    assert again.outcomes == []
    # the dry run states each condition's pilot, its std and n
    assert (
        main(
            [
                "sweep",
                str(spec),
                "--tracking-uri",
                uri,
                "--dry-run",
                "--target-ci",
                "12",
                "--max-replicates",
                "9",
            ]
        )
        == 0
    )
    dry = capsys.readouterr().out
    assert (
        f"{n} runs: {n} done" in dry and "two-stage: n = max(n0, ceil((t(0.975, n0 - 1) * s / 12)^2))" in dry
    )
    assert re.search(rf"\n\s*hybridsn\s+3/3\s+{re.escape(str(round(s, 3)))}\s+{n}\s+{n - 3}\s", dry), dry

    # the report applies the same rule to the same runs and gives both intervals
    rep = seedvar.report("two", tracking_uri=uri)
    table = rep.tables["two_stage"].set_index("condition")
    assert table.loc["hybridsn", "n"] == n and table.loc["hybridsn", "finished"] == n
    assert table.loc["hybridsn", "pilot_std"] == pytest.approx(s)
    assert table.loc["hybridsn", "stein_half_width"] == pytest.approx(
        stats.t.ppf(0.975, 2) * s / math.sqrt(n)
    )
    assert any("Replicates were decided by the data in two stages" in line for line in rep.answer)
    assert any(f"gave n = {n}" in line for line in rep.answer)
    # the parent run of the sweep that trained them records the target and each decision
    (parent,) = store.search(
        store.experiment_id("two"), schema.tag_filter(schema.TAG_KIND, schema.KIND_SWEEP)
    )
    assert parent.data.params["target.ci"] == "12.0" and parent.data.params["target.pilot"] == "3"
    assert parent.data.metrics[schema.target_metric("hybridsn", "replicates")] == n


@pytest.mark.slow
def test_two_hosts_running_one_two_stage_sweep_agree_and_train_each_replicate_once(tmp_path):
    uri = f"sqlite:///{tmp_path}/m/mlflow.db"
    specs = [write_spec(tmp_path / f"host{i}" / "s.toml", "pair", epochs=1, replicates=3) for i in range(2)]
    flags = ("--jobs", "1", "--target-ci", "12", "--max-replicates", "8")
    procs = [start_sweep(spec, uri, *flags, cwd=spec.parent) for spec in specs]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    n, _ = expected_n(uri, "pair", 12.0, 8)
    store = Store(uri, create=False)
    runs = child_runs(store, store.experiment_id("pair", create=False))
    finished = [r for r in runs if r.finished]
    assert sorted(r.replicate for r in finished) == list(range(n))  # each replicate once, n of them
    configs = expand(load_study(specs[0], {"seeds.replicates": n}), "cpu")
    assert sorted(r.config_hash for r in finished) == sorted(c.config_hash for c in configs)
    for text in outputs:  # both decided, and decided alike
        decided = [line for line in text.splitlines() if line.startswith("hybridsn: pilot 3/3")]
        assert decided and f"n = {n}" in decided[0], text


@pytest.mark.slow
def test_summary_and_stage_tables_read_as_a_user_needs(tmp_path):
    """A condition whose pilot is not complete is named as undecided, not given an n."""
    uri = f"sqlite:///{tmp_path}/m/mlflow.db"
    spec = write_spec(tmp_path / "s.toml", "half", epochs=1, replicates=3)
    assert seedvar.sweep(
        spec, tracking_uri=uri, progress=False, jobs=1, replicates=2
    ).outcomes  # 2 of the 3 pilots
    out = io.StringIO()
    dry = seedvar.sweep(spec, tracking_uri=uri, dry_run=True, target_ci=5.0, out=out)
    assert dry.decisions == {} and dry.undecided == {"hybridsn": "pilot 2/3 finished"}
    assert re.search(r"\n\s*hybridsn\s+2/3\s", out.getvalue()), out.getvalue()
