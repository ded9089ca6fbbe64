"""Why train mode differs from eval mode: BatchNorm batch statistics and dropout, per trained model.

Train mode switches on both; MC dropout switches on dropout alone. So for every trained model

    train - eval = (train - mc_dropout) + (mc_dropout - eval)
                   BatchNorm batch statistics   dropout

exactly, and seedvar already measures all three. Each part is reported as the mean over trained
models with the t-interval of a mean (seedvar.stats.interval): the differences are paired, one per model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from seedvar.stats.interval import LEVEL, as_1d_finite, mean_interval

PARTS = (
    ("total", "train", "eval", "train - eval"),
    ("batchnorm", "train", "mc_dropout", "train - mc_dropout: BatchNorm batch statistics"),
    ("dropout", "mc_dropout", "eval", "mc_dropout - eval: dropout"),
)
# The modes the parts difference, in the order they are checked: seedvar.results.MODES (stats imports nothing
# of seedvar; tests/test_stats.py holds the two equal).
PART_MODES = ("train", "mc_dropout", "eval")


def mode_gaps(
    accuracy: Mapping[str, ArrayLike], *, ci: float = LEVEL, resolution: float = 0.0
) -> pd.DataFrame:
    """Rows total / batchnorm / dropout: the per-model differences' n, mean, std, CI, min, max.

    ``accuracy`` maps eval, train and mc_dropout to each trained model's mean accuracy in that mode,
    in the same model order (paired). The parts add up model by model, so their means add up too.
    `resolution` floors the std of a part that varies; a part that is exactly 0 for every model (no
    dropout, no BatchNorm) is 0 by construction and keeps a zero-width interval.
    """
    acc = {m: as_1d_finite(accuracy[m], m) for m in PART_MODES}
    if len({a.size for a in acc.values()}) != 1:
        raise ValueError("train, mc_dropout and eval need one accuracy per trained model each (paired)")
    rows = []
    for part, a, b, what in PARTS:
        # rounded far below a test sample's weight: equal predictions averaged over other pass counts
        # differ by float noise (1e-15), which must read as 0, not as a difference
        d = np.round(acc[a] - acc[b], 9)
        s = mean_interval(d, level=ci, resolution=resolution if np.any(d != 0) else 0.0)
        rows.append({"part": part, "difference": what, **s.as_dict()})
    return pd.DataFrame(rows)


def parts_add_up(gaps: pd.DataFrame) -> bool:
    """The decomposition's identity on the means (a check the report and the tests share)."""
    g = gaps.set_index("part")["mean"]
    return bool(np.isclose(g["total"], g["batchnorm"] + g["dropout"], rtol=0, atol=1e-9))
