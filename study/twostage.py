"""Enough seeds, decided by the data: Stein's two-stage rule and its power-based twin.

A pilot of n0 replicates per condition gives each condition's seed std s (per-model accuracy in the
target mode, in points). Stein (1945): with n = max(n0, ceil((t(0.975, n0 - 1) * s / H)^2)) replicates
in all, the mean of the n trained models +- t(0.975, n0 - 1) * s / sqrt(n) is an exact 95% interval of
half-width <= H (normal accuracies; s from the pilot alone). The extra replicates depend on the pilot's
spread only, never on an observed difference or p-value, so no optional stopping enters.

Below plan, engine and analysis alike: the sweep decides n with these functions and the report states
and checks the same rule with them (numpy, scipy and statsmodels; no torch, no MLflow).
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # Stein's interval and the comparisons' family-wise level
POWER = 0.8  # --target-diff: power of each pairwise comparison


@dataclass(frozen=True)
class Target:
    """What a two-stage sweep aims for: a 95% interval of half-width `ci` points per condition, and/or
    power POWER to tell apart any two conditions `diff` points apart (Holm-corrected 5%)."""

    ci: float = 0.0  # half-width H of each condition's interval, accuracy points (0: no CI target)
    diff: float = 0.0  # smallest difference D worth telling apart, accuracy points (0: no difference target)
    mode: str = "eval"  # the test mode whose per-model accuracy is the target
    pilot: int = 3  # n0: the first stage's replicates per condition
    max_replicates: int = 100  # n never exceeds this; the cap is said when it binds

    @property
    def active(self) -> bool:
        return self.ci > 0 or self.diff > 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Target | None:
        """A target as a sweep recorded it; None when unreadable (an old or foreign tag)."""
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError):
            return None

    def rule(self) -> str:
        """The rule in one line, for the report and the README."""
        parts = []
        if self.ci > 0:
            parts.append(
                f"n = max(n0, ceil((t(0.975, n0 - 1) * s / {self.ci:g})^2)) for a 95% interval of half-width "
                f"{self.ci:g} points (Stein 1945)"
            )
        if self.diff > 0:
            parts.append(
                f"n per condition so that any two conditions {self.diff:g} points apart are told apart with "
                f"power {POWER:g} at a Holm-corrected 5% (two-sample t-test at 5% / pairs)"
            )
        return (
            "; ".join(parts)
            + f"; pilot n0 = {self.pilot}, s = the pilot's seed std in {self.mode} mode, n <= {self.max_replicates}"
        )


@dataclass(frozen=True)
class Decision:
    """One condition's second stage: from its pilot's seed std, how many replicates in all."""

    n0: int
    s: float  # the pilot's seed std, points
    n: int  # replicates in all (pilot included), after the cap
    wanted: int  # what the rule asked for before the cap
    t: float  # t(0.975, n0 - 1)
    half_width: float  # t * s / sqrt(n): Stein's half-width at n

    @property
    def capped(self) -> bool:
        return self.wanted > self.n

    @property
    def more(self) -> int:
        return self.n - self.n0


def t_quantile(n0: int) -> float:
    """t(0.975, n0 - 1): Stein's quantile, from the pilot's degrees of freedom."""
    return float(stats.t.ppf(0.5 + LEVEL / 2, n0 - 1))


def stein_replicates(s: float, n0: int, half_width: float) -> int:
    """Replicates in all for a 95% interval of the given half-width: max(n0, ceil((t * s / H)^2))."""
    if n0 < 2 or half_width <= 0 or not math.isfinite(s) or s < 0:
        raise ValueError(f"need n0 >= 2, H > 0 and a finite s >= 0, got n0={n0}, H={half_width}, s={s}")
    return max(n0, math.ceil((t_quantile(n0) * s / half_width) ** 2 - 1e-9))


def replicates_needed(std: float, diff: float, *, alpha: float = 0.05, power: float = POWER) -> int:
    """Replicates (trained models) per group to detect ``diff`` with a two-sided two-sample t-test.

    Uses statsmodels' TTestIndPower with effect size |diff| / std, rounded up; never fewer than 2
    (a t-test needs them).  std == 0 -> 2; diff == 0 -> ValueError (no sample size detects nothing).
    """
    from statsmodels.stats.power import TTestIndPower

    if not (math.isfinite(std) and math.isfinite(diff)):
        raise ValueError(f"std and diff must be finite, got std={std!r}, diff={diff!r}")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    if diff == 0:
        raise ValueError("diff must be non-zero: no number of replicates detects a zero difference")
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise ValueError(f"alpha and power must lie in (0, 1), got alpha={alpha!r}, power={power!r}")
    if std == 0:
        return 2
    analysis = TTestIndPower()
    effect = abs(diff) / std
    if analysis.power(effect_size=effect, nobs1=2, alpha=alpha, ratio=1.0, alternative="two-sided") >= power:
        return 2  # the solver's bracket starts above 2 and fails to converge for huge effects
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nobs = analysis.solve_power(
            effect_size=effect, nobs1=None, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
        )
    nobs = float(np.asarray(nobs).reshape(-1)[0])
    if not math.isfinite(nobs):
        raise RuntimeError(f"TTestIndPower did not converge for effect size {effect:.3g}")
    return max(2, math.ceil(nobs - 1e-9))


def difference_replicates(stds: Mapping[str, float], diff: float) -> dict[str, int]:
    """Per condition, replicates so that every pair `diff` points apart is detected with power POWER at
    5% / pairs (Bonferroni; any p below it Holm rejects too, so Holm's power is at least this): each
    condition takes the largest n of the pairs it is in, at the pair's pooled pilot std."""
    names = list(stds)
    pairs = len(names) * (len(names) - 1) // 2
    need = dict.fromkeys(names, 0)
    for a, b in itertools.combinations(names, 2):
        n = pair_replicates(pooled_std(stds[a], stds[b]), diff, pairs)
        need[a], need[b] = max(need[a], n), max(need[b], n)
    return need


def pooled_std(std_a: float, std_b: float) -> float:
    """Two conditions' seed stds pooled with equal weight: the std a pair's seed count is sized at."""
    return math.sqrt((std_a**2 + std_b**2) / 2)


def pair_replicates(sd: float, diff: float, pairs: int) -> int:
    """Replicates per condition that detect `diff` in one of `pairs` comparisons: power POWER, two-sided at
    (1 - LEVEL) / pairs (Bonferroni, the strictest step of the Holm correction)."""
    return replicates_needed(sd, diff, alpha=(1 - LEVEL) / pairs)


def decide(pilots: Mapping[str, Sequence[float]], target: Target) -> dict[str, Decision]:
    """Each condition's n from its pilot accuracies (points, n0 per condition): the larger of what the CI
    target and the difference target ask, capped at max_replicates. A function of the pilots alone, so
    every host that reads the same pilot runs decides the same n."""
    stds = {c: float(np.std(np.asarray(v, float), ddof=1)) for c, v in pilots.items()}
    by_diff = difference_replicates(stds, target.diff) if target.diff > 0 and len(stds) > 1 else {}
    out = {}
    for cond, values in pilots.items():
        n0, s = len(values), stds[cond]
        wanted = max(
            n0,
            stein_replicates(s, n0, target.ci) if target.ci > 0 else n0,
            by_diff.get(cond, n0),
        )
        n = min(wanted, max(target.max_replicates, n0))
        t = t_quantile(n0)
        out[cond] = Decision(n0, s, n, wanted, t, t * s / math.sqrt(n))
    return out


def stein_interval(values: Sequence[float], decision: Decision) -> tuple[float, float, float]:
    """(mean, low, high) of Stein's 95% interval from all n accuracies: mean +- t(0.975, n0 - 1) * s0 / sqrt(n),
    s0 the pilot's std (not the std of all n: that is what makes the interval exact)."""
    x = np.asarray(values, float)
    mean = float(x.mean())
    half = decision.t * decision.s / math.sqrt(len(x))
    return mean, mean - half, mean + half
