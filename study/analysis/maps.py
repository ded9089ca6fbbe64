"""Classification maps: per condition of a hyperspectral study, one model's test pixels in eval mode and in
two stochastic passes, with the split, for the figure that shows which pixels flip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seedvar.analysis.load import LoadedRun
from seedvar.analysis.setup import conditions
from seedvar.results import EVAL, MC_DROPOUT, TRAIN


@dataclass
class MapData:
    """One hyperspectral model's test pixels: eval-mode map, two stochastic passes and the split."""

    condition: str
    run: str
    mode: str
    gt: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    eval_pred: np.ndarray
    pass_a: np.ndarray
    pass_b: np.ndarray
    train_ids: np.ndarray | None = None  # row * width + col of the training pixels

    @property
    def flipped(self) -> int:
        return int((self.pass_a != self.pass_b).sum())


def map_data(finished: list[LoadedRun]) -> list[MapData]:
    """Per condition, its first hyperspectral run with an eval pass and two stochastic passes."""
    out = []
    for cond in conditions(finished):
        for r in finished:
            p = r.preds if r.label == cond else None
            if p is None or p.gt is None or p.coords is None or EVAL not in p.passes:
                continue
            mode = TRAIN if TRAIN in p.passes else MC_DROPOUT if MC_DROPOUT in p.passes else None
            if mode is None or len(p.passes[mode]) < 2:
                continue
            out.append(
                MapData(
                    cond,
                    r.name,
                    mode,
                    p.gt,
                    p.coords,
                    p.labels,
                    p.passes[EVAL][0],
                    *p.passes[mode][:2],
                    train_ids=p.train_ids,
                )
            )
            break
    return out
