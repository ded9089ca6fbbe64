"""The one sample shape: per (condition, mode), each trained model's score in every test pass (models x
passes, in points for accuracy). Runs are read into it once; the sweep's summary table, the condition runs,
`seedvar.runs` and every report table start from it. A metric of runs seedvar did not train is the same
shape with one pass per run (its mode is the metric's name).

Plain data, as rliable keeps one array per algorithm: a `Cell` per (condition, mode) holding `Model`s, and
`Samples`, the cells in reading order (conditions as their runs came, modes in the order asked for).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import numpy as np

from seedvar.stats.interval import MeanInterval, PooledSummary, mean_interval, pool


@dataclass(frozen=True)
class Model:
    """One trained model in one mode: its score in each pass, or (when only its logged summary was read)
    the summary alone; `step` is the grid its score lies on (100 / test samples for an accuracy in points;
    0 when unknown or continuous)."""

    run: str  # its run's name
    run_id: str
    mean: float
    std: float
    min: float
    max: float
    n_passes: int
    step: float = 0.0
    flip_rate: float = float("nan")  # points: the share of test samples that change class between passes
    passes: np.ndarray | None = field(default=None, repr=False)  # per-pass scores; None: summary only

    @classmethod
    def of_passes(cls, run: str, run_id: str, passes: np.ndarray, step: float = 0.0) -> Model:
        """From its per-pass scores (the report, which recomputes them from the logged predictions)."""
        k = len(passes)
        return cls(
            run,
            run_id,
            mean=float(passes.mean()),
            std=float(passes.std(ddof=1)) if k > 1 else 0.0,
            min=float(passes.min()),
            max=float(passes.max()),
            n_passes=k,
            step=step,
            passes=passes,
        )


class Sampled(Protocol):
    """A run that can give its sample: the run readers (record.reader.StoredRun and the report's LoadedRun)
    and a metric's runs implement it."""

    @property
    def label(self) -> str: ...

    @property
    def modes(self) -> Sequence[str]: ...

    def sample(self, mode: str) -> Model: ...


R = TypeVar("R", bound=Sampled)
BOUNDS = (0.0, 100.0)  # an accuracy in points


@dataclass(frozen=True)
class Cell(Generic[R]):
    """One condition in one mode: its trained models (`runs[i]` is the run `models[i]` was read from, for
    what needs more than scores: predictions, params)."""

    condition: str
    mode: str
    models: tuple[Model, ...]
    runs: tuple[R, ...]
    bounds: tuple[float, float] | None = BOUNDS

    def means(self) -> np.ndarray:
        """Each trained model's mean over its passes: one value per seed, what intervals and tests use."""
        return np.array([m.mean for m in self.models])

    def per_pass(self) -> list[np.ndarray]:
        """Models x passes (ragged), for what is nested in models: variance components, flip rates."""
        missing = [m.run for m in self.models if m.passes is None]
        if missing:
            raise ValueError(f"{self.condition} {self.mode}: runs {missing} were read as summaries only")
        return [m.passes for m in self.models if m.passes is not None]

    @property
    def resolution(self) -> float:
        """The grid of its scores, the coarsest of its models' (for accuracy: 100 / the fewest test samples)."""
        return max((m.step for m in self.models), default=0.0)

    def pooled(self) -> PooledSummary:
        """Mean, std, min and max over every pass of every model: from the passes when they were read,
        else from each model's summary (the same numbers)."""
        if all(m.passes is not None for m in self.models):
            return PooledSummary.of_passes(self.per_pass())
        return pool(
            [m.n_passes for m in self.models],
            [m.mean for m in self.models],
            [m.std for m in self.models],
            [m.min for m in self.models],
            [m.max for m in self.models],
        )

    def interval(self) -> MeanInterval:
        """The 95% interval of the mean over trained models (seedvar.stats.interval), floored at the grid."""
        return mean_interval(self.means(), resolution=self.resolution, bounds=self.bounds)


class Samples(dict[tuple[str, str], Cell]):
    """Every (condition, mode) cell of a set of runs, in reading order."""

    @classmethod
    def of(
        cls,
        runs: Iterable[R],
        modes: Sequence[str] | None = None,
        bounds: tuple[float, float] | None = BOUNDS,
    ) -> Samples:
        """Runs read once into cells: conditions in the order their first run came, modes in `modes`
        (default: in the order the runs have them); a run counts in each mode it has. `bounds`: the scores'
        possible range (accuracy in points; None for a metric of unknown range)."""
        found: dict[tuple[str, str], list[R]] = {}
        order: dict[str, None] = {}
        seen_modes: dict[str, None] = {}
        for run in runs:
            order.setdefault(run.label, None)
            for mode in run.modes:
                seen_modes.setdefault(mode, None)
                found.setdefault((run.label, mode), []).append(run)
        out = cls()
        for cond in order:
            for mode in modes if modes is not None else seen_modes:
                group = found.get((cond, mode))
                if group:
                    out[cond, mode] = Cell(
                        cond, mode, tuple(r.sample(mode) for r in group), tuple(group), bounds
                    )
        return out

    def conditions(self) -> list[str]:
        return list(dict.fromkeys(cond for cond, _ in self))

    def of_mode(self, mode: str) -> dict[str, Cell]:
        """The cells of one mode, by condition."""
        return {cond: cell for (cond, m), cell in self.items() if m == mode}

    def scores(self, mode: str) -> dict[str, np.ndarray]:
        """One value per trained model (its mean over passes) by condition: what conditions are compared on."""
        return {cond: cell.means() for cond, cell in self.of_mode(mode).items()}

    def resolutions(self, mode: str) -> dict[str, float]:
        """Each condition's grid in one mode (the floor of its intervals and tests)."""
        return {cond: cell.resolution for cond, cell in self.of_mode(mode).items()}
