"""The paper's protocol: `studies/paper.toml` splits Indian Pines exactly as the published HybridSN code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from seedvar.engine import compute
from seedvar.plan import expand, load_study

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def test_paper_split_is_the_published_codes_split(tmp_path):
    cfg = expand(load_study(STUDIES / "paper.toml", {"device": "cpu"}), "cpu")[0]
    assert cfg.seeds["split"] == 345
    task = compute.load_data(cfg, data_root=tmp_path)  # Indian Pines from tensorly's copy: no files needed
    assert task.info["verified"] == "sha256"
    # the code: createImageCubes keeps labelled pixels in row-major order, then
    # train_test_split(X, y, test_size=0.7, random_state=345, stratify=y)
    gt = task.gt
    rows, cols = np.nonzero(gt >= 0)
    y = gt[rows, cols]
    _, test = train_test_split(np.arange(len(y)), test_size=0.7, random_state=345, stratify=y)
    assert len(task.test) == len(test) == 7175
    assert np.array_equal(np.sort(task.test_ids), np.sort(rows[test] * gt.shape[1] + cols[test]))
