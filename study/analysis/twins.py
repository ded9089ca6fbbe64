"""Implementation twins in a study: runs of the same seeds that differ in one implementation setting only
(deterministic kernels, CPU threads, precision, device). Their differences are implementation randomness,
reported apart from the seeds' spread (seedvar.stats.twins) and never ranked as conditions.

Twins are found from the runs' params, so any study that trained the same seeds under two values of such
a setting has them: `deterministic = "both"` and `[train] threads = [1, 2]` are the two ways to ask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seedvar.analysis.load import LoadedRun
from seedvar.record import schema as s
from seedvar.results import EVAL, points
from seedvar.stats import flips
from seedvar.stats import twins as tw
from seedvar.stats.interval import resolution_of

# setting -> the run param that holds it
SETTINGS = {
    "deterministic": "deterministic",
    "threads": "train.threads",
    "precision": "train.precision",
    "device": "device",
}
# params that are facts of a run rather than its settings: twins may differ in them
FACT_PREFIXES = (s.PARAM_DATA_PREFIX, s.PARAM_TEST_FUSED, s.PARAM_TEST_SPLIT)
COLUMNS = [
    "setting",
    "a",
    "b",
    "pairs",
    "identical_weights",
    "churn",
    "churn_ci_low",
    "churn_ci_high",
    "churn_seeds",
    "diff_std",
    "diff_std_ci_low",
    "diff_std_ci_high",
    "share",
    "share_ci_low",
    "share_ci_high",
    "time_ratio",
    "time_ratio_ci_low",
    "time_ratio_ci_high",
]
# more columns the sentences read (not in tables/twins.csv)
EXTRA = ["value_a", "value_b", "device"]
MODE = EVAL  # twins are compared on eval accuracy and eval predictions: deterministic given the weights


def _reference_order(setting: str, value: str) -> tuple[int, float, str]:
    """Which value of a setting is the reference its twins are compared against: deterministic kernels,
    the fewest threads, fp32, the CPU."""
    if setting == "deterministic":
        return (0 if value == "true" else 1, 0.0, value)
    if setting == "threads":
        try:
            return (0, float(value), value)
        except ValueError:
            return (1, 0.0, value)
    first = {"precision": "fp32", "device": "cpu"}.get(setting)
    return (0 if value == first else 1, 0.0, value)


def _value(run: LoadedRun, param: str) -> str:
    """A setting's value as sentences write it (`deterministic=false`, as the spec does)."""
    value = run.params[param]
    return value.lower() if value in ("True", "False") else value


def _key(run: LoadedRun, param: str) -> tuple[tuple[str, str], ...]:
    """Everything that makes a run what it is except one setting: runs sharing it are that setting's twins."""
    return tuple(
        sorted((k, v) for k, v in run.params.items() if k != param and not k.startswith(FACT_PREFIXES))
    )


@dataclass
class TwinPairs:
    """The twin pairs of two conditions under one setting: a at the reference value, b at another."""

    setting: str
    value_a: str
    value_b: str
    pairs: list[tuple[LoadedRun, LoadedRun]]

    @property
    def a(self) -> str:
        return self.pairs[0][0].label

    @property
    def b(self) -> str:
        return self.pairs[0][1].label


def find_twins(runs: list[LoadedRun]) -> list[TwinPairs]:
    """Every (setting, condition a, condition b) with its twin pairs, from finished runs tested in eval mode."""
    runs = [r for r in runs if r.finished and r.predictions is not None and MODE in r.modes]
    out: list[TwinPairs] = []
    for setting, param in SETTINGS.items():
        having = [r for r in runs if param in r.params]
        values = sorted({_value(r, param) for r in having}, key=lambda v: _reference_order(setting, v))
        if len(values) < 2:
            continue
        by_key: dict[tuple, dict[str, LoadedRun]] = {}
        for r in having:
            by_key.setdefault(_key(r, param), {})[_value(r, param)] = r
        found: dict[tuple[str, str, str], TwinPairs] = {}
        for group in by_key.values():
            ref = next((v for v in values if v in group), None)
            for v in values:
                if ref is None or v == ref or v not in group:
                    continue
                a, b = group[ref], group[v]
                found.setdefault((ref, v, a.label), TwinPairs(setting, ref, v, [])).pairs.append((a, b))
        out += sorted(found.values(), key=lambda t: (values.index(t.value_b), t.a))
    return out


def twin_conditions(found: list[TwinPairs]) -> list[str]:
    """The conditions that are twins of another (not at the reference value of a setting): never ranked."""
    return list(dict.fromkeys(t.b for t in found))


def _acc(run: LoadedRun) -> float:
    return float(run.accuracy(MODE).mean())


def _seed_churn(runs: list[LoadedRun]) -> float:
    return flips.mean_churn([(r.preds.ids, r.preds.passes[MODE][0]) for r in runs])


def twin_table(found: list[TwinPairs], runs: list[LoadedRun]) -> pd.DataFrame:
    """One row per (setting, condition a, condition b): twin pairs, bit-identical weights, eval churn
    between twins against the churn between seeds of the same conditions (%), the std of the twins'
    eval accuracy differences (points) with its 95% interval, the implementation's share of the seed
    variance with its interval, and b's seconds per epoch over a's."""
    rows = []
    for t in found:
        a_runs = [a for a, _ in t.pairs]
        b_runs = [b for _, b in t.pairs]
        weights = [(a.tags.get(s.TAG_WEIGHTS, ""), b.tags.get(s.TAG_WEIGHTS, "")) for a, b in t.pairs]
        identical = sum(1 for wa, wb in weights if wa and wa == wb)
        acc_a = [_acc(r) for r in a_runs]
        acc_b = [_acc(r) for r in b_runs]
        # twins known identical get no grid floor: their differences are exactly 0
        grid = (
            0.0
            if identical == len(t.pairs)
            else resolution_of([len(r.preds.labels) for r in a_runs + b_runs])
        )
        d = tw.diff_std(acc_a, acc_b, resolution=grid)
        share = tw.implementation_share(acc_a, acc_b, resolution=grid)
        seeds_a = [r for r in runs if r.label == t.a and r.predictions is not None and MODE in r.modes]
        seeds_b = [r for r in runs if r.label == t.b and r.predictions is not None and MODE in r.modes]
        seed_churns = [c for c in (_seed_churn(seeds_a), _seed_churn(seeds_b)) if np.isfinite(c)]
        seconds = s.train_metric("seconds")
        churn = tw.twin_churn(
            [
                ((a.preds.ids, a.preds.passes[MODE][0]), (b.preds.ids, b.preds.passes[MODE][0]))
                for a, b in t.pairs
            ]
        )
        timed = tw.time_ratio(
            [a.metrics.get(seconds, np.nan) for a in a_runs], [b.metrics.get(seconds, np.nan) for b in b_runs]
        )
        rows.append(
            {
                "setting": t.setting,
                "a": t.a,
                "b": t.b,
                "pairs": len(t.pairs),
                "identical_weights": identical,
                "churn": points(churn.rate),
                "churn_ci_low": points(churn.ci[0]),
                "churn_ci_high": points(churn.ci[1]),
                "churn_seeds": points(float(np.mean(seed_churns))) if seed_churns else float("nan"),
                "diff_std": d.std,
                "diff_std_ci_low": d.ci[0],
                "diff_std_ci_high": d.ci[1],
                "share": points(share.share),
                "share_ci_low": points(share.ci[0]),
                "share_ci_high": points(share.ci[1]),
                "time_ratio": timed.ratio,
                "time_ratio_ci_low": timed.ci[0],
                "time_ratio_ci_high": timed.ci[1],
                "value_a": t.value_a,
                "value_b": t.value_b,
                "device": ", ".join(sorted({r.params.get("device", "?") for r in a_runs + b_runs})),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS + EXTRA)


def twin_sentences(table: pd.DataFrame) -> list[str]:
    """Per setting, first what the twins say: bit-identical or not, then how far predictions and accuracy
    move between twins against what the seeds move, and the time ratio (the cost of the reference)."""
    out = []
    for r in table.itertuples():
        head = f"{r.setting}={r.value_b} (twins of {r.a}, {r.setting}={r.value_a}, same seeds)"
        if r.identical_weights == r.pairs:
            why = (
                " (this device's kernels are deterministic either way)"
                if r.setting == "deterministic" and "cuda" not in r.device
                else ""
            )
            text = f"{head}: {r.identical_weights} of {r.pairs} twins bit-identical on {r.device}{why}."
        else:
            text = (
                f"{head}: weights identical in {r.identical_weights} of {r.pairs} twins on {r.device}; "
                f"{r.churn:.2f}% of test samples change class between twins (eval; 95% CI {r.churn_ci_low:.2f} to "
                f"{r.churn_ci_high:.2f}%), against {r.churn_seeds:.2f}% "
                f"between seeds; the twins' eval accuracy differs by a std of {r.diff_std:.2f} points (95% CI "
                f"{r.diff_std_ci_low:.2f} to {r.diff_std_ci_high:.2f})"
            )
            if np.isfinite(r.share):
                text += (
                    f", {r.share:.0f}% of one run's seed variance (95% CI {r.share_ci_low:.0f}% to "
                    f"{r.share_ci_high:.0f}%): implementation randomness against algorithmic"
                )
            text += "."
        if np.isfinite(r.time_ratio):
            ci = (
                f" (95% CI {r.time_ratio_ci_low:.2f} to {r.time_ratio_ci_high:.2f})"
                if np.isfinite(r.time_ratio_ci_low)
                else " (one pair: no interval)"
            )
            text += f" Seconds per epoch, {r.setting}={r.value_b} over {r.setting}={r.value_a}: {r.time_ratio:.2f}x{ci}."
        out.append(text)
    if out:
        out.append(
            "Twins are the same seeds under another implementation: they are not ranked as conditions."
        )
    return out
