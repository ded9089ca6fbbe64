"""What a sweep did, as the sweep room returns it: the plan, each run's outcome, the two-stage decisions and
the summary table read back from the store."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from seedvar.plan import RunConfig, Study
from seedvar.results import RunOutcome, Status
from seedvar.stats.twostage import Decision


@dataclass
class SweepResult:
    """A whole sweep: its plan with each run's status before it started, its experiment and parent run,
    each run's outcome, for a two-stage sweep each condition's decision (or why there is none yet), and
    `summary`, the table per condition and mode over every finished run of the plan."""

    study: Study
    configs: list[RunConfig]
    status: dict[str, str]  # config hash -> done | running | resumable | pending, before the sweep
    tracking_uri: str
    experiment_id: str | None = None
    parent_id: str | None = None
    outcomes: list[RunOutcome] = field(default_factory=list)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    decisions: dict[str, Decision] = field(default_factory=dict)  # condition -> its second stage
    undecided: dict[str, str] = field(default_factory=dict)  # condition -> why its pilot cannot decide yet

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == Status.FAILED]
