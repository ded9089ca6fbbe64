"""The one sample shape (seedvar.stats.samples): a run read from its logged summaries and the same run read
from its predictions give the same cells, so the sweep's table and the report's agree."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_runs import LABELS, dropout_model, run

from seedvar.analysis.load import LoadedRun
from seedvar.record import schema
from seedvar.record.reader import StoredRun
from seedvar.results import MODES
from seedvar.stats.samples import Samples


def logged(r: LoadedRun) -> StoredRun:
    """The run as the sweep reads it back: its summaries as logged metrics, no predictions."""
    metrics = {k: v for mode in r.modes for k, v, _ in schema.summary_metrics(r.preds.summary(mode), mode)}
    params = {**r.params, f"{schema.PARAM_DATA_PREFIX}n_test": str(len(LABELS))}
    return StoredRun(
        r.run_id,
        r.name,
        r.status,
        r.model,
        r.deterministic,
        r.varied,
        r.replicate,
        r.config_hash,
        params=params,
        metrics=metrics,
    )


def test_summaries_and_predictions_give_the_same_cells() -> None:
    rng = np.random.default_rng(11)
    runs = [dropout_model(rng, i, model=m) for m in ("b", "a") for i in range(4)]
    from_preds = Samples.of(runs, MODES)
    from_logs = Samples.of([logged(r) for r in runs], MODES)
    assert list(from_preds) == list(from_logs) == [(c, m) for c in ("b", "a") for m in MODES]
    for key, cell in from_preds.items():
        other = from_logs[key]
        assert other.resolution == cell.resolution == pytest.approx(100 / len(LABELS))
        assert other.means() == pytest.approx(cell.means(), abs=1e-9)
        a, b = cell.pooled(), other.pooled()
        assert (a.runs, a.passes) == (b.runs, b.passes)
        assert (a.mean, a.std, a.min, a.max) == pytest.approx((b.mean, b.std, b.min, b.max), abs=1e-9)
        ia, ib = cell.interval(), other.interval()
        assert (ia.ci_low, ia.ci_high) == pytest.approx((ib.ci_low, ib.ci_high), abs=1e-9)
    with pytest.raises(ValueError, match="summaries only"):
        from_logs["a", "train"].per_pass()


def test_cells_keep_run_order_and_only_the_modes_a_run_has() -> None:
    rng = np.random.default_rng(2)
    ev = {"eval": np.repeat(LABELS[None], 1, 0)}
    runs = [
        run("x-0", ev, model="x"),
        dropout_model(rng, 0, model="y"),
        run("x-1", ev, model="x", replicate=1),
    ]
    cells = Samples.of(runs, MODES)
    assert list(cells) == [("x", "eval"), ("y", "eval"), ("y", "train"), ("y", "mc_dropout")]
    assert [m.run for m in cells["x", "eval"].models] == ["x-0", "x-1"]
    assert cells.scores("eval")["x"] == pytest.approx([100.0, 100.0])
    assert Samples.of(runs, ["train"]).conditions() == ["y"]
