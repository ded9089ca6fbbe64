"""Enough seeds, decided by the data: Stein's two-stage rule and its power-based twin.

A pilot of n0 replicates per condition gives each condition's seed std s (per-model accuracy in the
target mode, in points). Stein (1945): with n = max(n0, ceil((t(0.975, n0 - 1) * s / H)^2)) replicates
in all, the mean of the n trained models +- t(0.975, n0 - 1) * s / sqrt(n) is an exact 95% interval of
half-width <= H (normal accuracies; s from the pilot alone). The extra replicates depend on the pilot's
spread only, never on an observed difference or p-value, so no optional stopping enters.

Resolution: accuracies lie on a grid of 100 / (test samples) points, and a pilot whose models all scored
alike has s = 0 (14% of pilots at a true 0.15-point std on 500 test samples), which made the rule stop at
n0 with a half-width of 0 that covered 86%. s is floored at resolution / sqrt(12), the smallest spread
the test set resolves (seedvar.stats.interval), so a reached target has a half-width > 0 that holds
(98% coverage in that case, 95% where the spread is above the grid).

--target-diff sizes at an upper confidence bound of the pilot std (80%, Browne 1995), pooled over every
condition where Bartlett's test finds their stds compatible (seedvar.stats.power.Spread): at the pilot
std itself, n0 = 3 reached 0.69 power on average and fell below 0.5 in 23% of sweeps; at the bound, 0.8
or more in about 80% (simulated, benchmarks/coverage.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from seedvar.stats import STD_CHOICES  # noqa: F401 (what Target.std may be; re-exported)
from seedvar.stats.interval import LEVEL, mean_interval, resolution_floor
from seedvar.stats.power import POWER, UPPER, Spread, power


@dataclass(frozen=True)
class Target:
    """What a two-stage sweep aims for: a 95% interval of half-width `ci` points per condition, and/or
    power POWER to tell apart any two conditions `diff` points apart (Holm-corrected 5%)."""

    ci: float = 0.0  # half-width H of each condition's interval, accuracy points (0: no CI target)
    diff: float = 0.0  # smallest difference D worth telling apart, accuracy points (0: no difference target)
    mode: str = "eval"  # the test mode whose per-model accuracy is the target
    pilot: int = 3  # n0: the first stage's replicates per condition
    max_replicates: int = 100  # n never exceeds this; the cap is said when it binds
    std: str = "upper80"  # --target-diff sizes at: "upper80" (Browne's bound on the pilot std) or "pilot"

    @property
    def active(self) -> bool:
        return self.ci > 0 or self.diff > 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Target | None:
        """A target as a sweep recorded it; None when unreadable (a foreign tag). Sweeps recorded before
        the upper bound existed sized at the pilot std, so a tag without `std` reads as "pilot"."""
        try:
            found = json.loads(text)
            return cls(**{"std": "pilot", **found})
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
            at = (
                f"the {UPPER:.0%} upper confidence bound of the pilot std (Browne 1995), pooled over the "
                "conditions where Bartlett's test finds their stds compatible, else pair by pair"
                if self.std == "upper80"
                else "the pilot std, pooled as the bound would be"
            )
            parts.append(
                f"n per condition so that any two conditions {self.diff:g} points apart are told apart with "
                f"power {POWER:g} at a Holm-corrected 5% (two-sample t-test at 5% / pairs), sized at {at}"
            )
        return (
            "; ".join(parts)
            + f"; pilot n0 = {self.pilot}, s = the pilot's seed std in {self.mode} mode (at least the test "
            f"set's resolution / sqrt(12)), n <= {self.max_replicates}"
        )


@dataclass(frozen=True)
class Decision:
    """One condition's second stage: from its pilot's seed std, how many replicates in all."""

    n0: int
    s: float  # the pilot's seed std, points
    n: int  # replicates in all (pilot included), after the cap
    wanted: int  # what the rule asked for before the cap
    t: float  # t(0.975, n0 - 1)
    half_width: float  # t * max(s, floor) / sqrt(n): Stein's half-width at n
    floor: float = 0.0  # the resolution floor of s: resolution / sqrt(12)

    @property
    def capped(self) -> bool:
        return self.wanted > self.n

    @property
    def more(self) -> int:
        return self.n - self.n0

    @property
    def s_used(self) -> float:
        """The pilot std the rule used: s, or the resolution floor when the models spread less."""
        return max(self.s, self.floor)


def t_quantile(n0: int) -> float:
    """t(0.975, n0 - 1): Stein's quantile, from the pilot's degrees of freedom."""
    return float(stats.t.ppf(0.5 + LEVEL / 2, n0 - 1))


def stein_replicates(s: float, n0: int, half_width: float) -> int:
    """Replicates in all for a 95% interval of the given half-width: max(n0, ceil((t * s / H)^2))."""
    if n0 < 2 or half_width <= 0 or not math.isfinite(s) or s < 0:
        raise ValueError(f"need n0 >= 2, H > 0 and a finite s >= 0, got n0={n0}, H={half_width}, s={s}")
    return max(n0, math.ceil((t_quantile(n0) * s / half_width) ** 2 - 1e-9))


def spread(stds: Mapping[str, float], n0: int, target: Target) -> Spread:
    """The pilot stds as seed counts are sized at them: pooled over every condition where Bartlett's test
    finds them compatible, at Browne's upper bound unless --target-std pilot (seedvar.stats.power)."""
    return Spread.of(stds, dict.fromkeys(stds, n0), UPPER if target.std == "upper80" else None)


def difference_replicates(stds: Mapping[str, float], diff: float, n0: int, target: Target) -> dict[str, int]:
    """Per condition, replicates so that every pair `diff` points apart is detected with power POWER at
    5% / pairs (Bonferroni; any p below it Holm rejects too, so Holm's power is at least this): one n from
    the pooled std where the pilots' stds are compatible, else each condition takes the largest n of the
    pairs it is in."""
    pairs = len(stds) * (len(stds) - 1) // 2
    return spread(stds, n0, target).replicates(diff, pairs)


def decidable(
    pilots: Mapping[str, Sequence[float]], target: Target
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """The gate before any decision: the conditions whose pilot is complete, and for the others why they
    wait. A difference target compares every condition, so it decides none until every pilot is in."""
    complete = {c: list(v) for c, v in pilots.items() if len(v) >= target.pilot}
    waiting = {
        c: f"pilot {len(v)}/{target.pilot} finished" for c, v in pilots.items() if len(v) < target.pilot
    }
    if target.diff > 0 and waiting:
        waiting.update(
            dict.fromkeys(
                complete, "waits for the other conditions' pilots (--target-diff compares them all)"
            )
        )
        complete = {}
    return complete, waiting


def decide(
    pilots: Mapping[str, Sequence[float]], target: Target, resolution: Mapping[str, float] | None = None
) -> dict[str, Decision]:
    """Each condition's n from its pilot accuracies (points, n0 per condition): the larger of what the CI
    target and the difference target ask, capped at max_replicates. A function of the pilots alone, so
    every host that reads the same pilot runs decides the same n. `resolution` (points per condition)
    floors each pilot std at resolution / sqrt(12)."""
    res = resolution or {}
    floors = {c: resolution_floor(res.get(c, 0.0)) for c in pilots}
    stds = {c: mean_interval(v).std for c, v in pilots.items()}  # exactly 0 when every model scored alike
    used = {c: max(stds[c], floors[c]) for c in pilots}
    n0s = {len(v) for v in pilots.values()}
    by_diff = (
        difference_replicates(used, target.diff, min(n0s), target)
        if target.diff > 0 and len(used) > 1
        else {}
    )
    out = {}
    for cond, values in pilots.items():
        n0 = len(values)
        wanted = max(
            n0,
            stein_replicates(used[cond], n0, target.ci) if target.ci > 0 else n0,
            by_diff.get(cond, n0),
        )
        n = min(wanted, max(target.max_replicates, n0))
        t = t_quantile(n0)
        out[cond] = Decision(n0, stds[cond], n, wanted, t, t * used[cond] / math.sqrt(n), floors[cond])
    return out


def stein_interval(values: Sequence[float], decision: Decision) -> tuple[float, float, float]:
    """(mean, low, high) of Stein's 95% interval from all n accuracies: mean +- t(0.975, n0 - 1) * s0 / sqrt(n),
    s0 the pilot's std, floored (not the std of all n: that is what makes the interval exact)."""
    x = np.asarray(values, float)
    mean = float(x.mean())
    half = decision.t * decision.s_used / math.sqrt(len(x))
    return mean, mean - half, mean + half


def achieved_power(n: int, std: float, diff: float, pairs: int) -> float:
    """The power n replicates per condition give to tell apart `diff` at the final seed std, two-sided at
    5% / pairs: what a difference target reached, said by the report."""
    if std <= 0:
        return 1.0
    return power(max(n, 2), diff / std, (1 - LEVEL) / pairs)
