"""A two-stage sweep's second stage: what the finished pilot runs in the store say each condition needs.

The rule itself (Stein, the difference target, the gate that waits for every pilot) is
seedvar.stats.twostage, which the report applies to the same runs; here it meets the store and the plan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from seedvar.plan import RunConfig, Study, expand
from seedvar.record.reader import child_runs, latest_finished
from seedvar.record.store import Store
from seedvar.stats.samples import Samples
from seedvar.stats.twostage import Decision, Target, decidable, decide

WAIT_SECONDS = 2.0  # how often a two-stage sweep looks whether the pilot runs of another sweep finished


@dataclass
class Pilots:
    """Per condition, the target mode's per-model accuracy (points, as logged) of its finished pilot runs,
    and its test set's resolution (points)."""

    accuracy: dict[str, list[float]] = field(default_factory=dict)
    resolution: dict[str, float] = field(default_factory=dict)


def pilots(store: Store | None, experiment_id: str | None, plan: list[RunConfig], target: Target) -> Pilots:
    """What every host reads from the store alike, so they decide alike. No store yet: no finished pilot."""
    finished = latest_finished(child_runs(store, experiment_id)) if store and experiment_id else {}
    runs = [finished[c.config_hash] for c in plan if c.config_hash in finished]
    cells = Samples.of(runs, [target.mode]).of_mode(target.mode)
    found = Pilots()
    for cond in dict.fromkeys(c.condition.name for c in plan):
        cell = cells.get(cond)
        found.accuracy[cond] = list(map(float, cell.means())) if cell is not None else []
        if cell is not None:
            found.resolution[cond] = cell.resolution
    return found


def second_stage(
    study: Study, device: str, found: Pilots
) -> tuple[dict[str, Decision], dict[str, str], list[RunConfig]]:
    """Each condition's decision (or why it waits) and the second stage's configs: replicates n0..n-1, the
    very configs of a plain sweep with --replicates n, so nothing trains twice and a rerun resumes."""
    target = study.target
    complete, waiting = decidable(found.accuracy, target)
    decisions = decide(complete, target, found.resolution) if complete else {}
    by_n: dict[int, list[str]] = {}
    for cond, d in decisions.items():
        by_n.setdefault(d.n, []).append(cond)
    extra: list[RunConfig] = []
    for n, conds in sorted(by_n.items()):
        if n > target.pilot:
            more = dataclasses.replace(study, seeds=dataclasses.replace(study.seeds, replicates=n))
            extra += [
                c for c in expand(more, device) if c.replicate >= target.pilot and c.condition.name in conds
            ]
    return decisions, waiting, extra
