"""Was it a lucky seed: the claim's answers against known truth (fixed seeds, fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seedvar.stats import luck


def test_normal_model_constants() -> None:
    assert luck.expected_max_std(1) == 0.0
    assert luck.expected_max_std(2) == pytest.approx(1 / math.sqrt(math.pi))
    assert luck.expected_max_std(5) == pytest.approx(1.16296, abs=1e-4)
    assert luck.best_of_k(1.5) == pytest.approx(9.27, abs=0.01)
    assert luck.best_of_k(-0.3) == 1.0


def test_ustat_is_exact_on_small_sets() -> None:
    x = [3.0, 1.0, 2.0]
    assert luck.expected_max_ustat(x, 1) == pytest.approx(2.0)
    assert luck.expected_max_ustat(x, 2) == pytest.approx((2 + 3 + 3) / 3)
    assert luck.expected_max_ustat(x, 3) == 3.0
    assert luck.expected_max_ustat(x, 2, higher=False) == pytest.approx((1 + 1 + 2) / 3)
    with pytest.raises(ValueError):
        luck.expected_max_ustat(x, 4)


@pytest.mark.slow
def test_done_when_coverage_and_bias() -> None:
    """Issue 38's "Done when": 10 seeds from N(95, 1), claim 96.5 (93.32nd percentile, best of 9.27)."""
    rng = np.random.default_rng(38)
    reps = 200
    hits = np.zeros(4)
    err = []
    for _ in range(reps):
        x = rng.normal(95.0, 1.0, 10)
        h = luck.hold(x, 96.5)
        lo, hi = luck.expected_max_interval(x, 5)
        hits += [
            h.percentile_ci[0] <= 93.32 <= h.percentile_ci[1],
            h.best_of_ci[0] <= 9.27 <= h.best_of_ci[1],
            lo <= 96.163 <= hi,
            h.share_ci[0] <= 1 - 0.9332 <= h.share_ci[1],
        ]
        err.append(luck.expected_max_ustat(x, 5) - 96.163)
    cov = hits / reps
    assert (cov[:3] > 0.90).all() and (cov[:3] < 0.99).all(), cov
    assert cov[3] >= 0.93, cov
    assert abs(np.mean(err)) < 0.05


def test_lower_is_better_mirrors() -> None:
    x = np.random.default_rng(0).normal(5.0, 1.0, 8)
    up = luck.hold(x, 6.0)
    down = luck.hold(-x, -6.0, higher=False)
    assert down.percentile == pytest.approx(up.percentile)
    assert down.best_of_ci == pytest.approx(up.best_of_ci)
    lo, hi = luck.expected_max_interval(-x, 3, higher=False)
    ulo, uhi = luck.expected_max_interval(x, 3)
    assert (lo, hi) == pytest.approx((-uhi, -ulo))


def test_claims_tables_and_sentence() -> None:
    from seedvar.analysis.claims import hold_claims

    rng = np.random.default_rng(1)
    values = {"hybridsn": rng.normal(95.56, 1.3, 10), "b": rng.normal(94.0, 1.0, 5)}
    sec = hold_claims(values, [("hybridsn", 96.89), ("b", 93.0)])
    claims = sec.claims
    assert list(claims["condition"]) == ["hybridsn", "b"]
    assert {"percentile_ci_low", "best_of_ci_high", "p_best_reaches"} <= set(claims.columns)
    em = sec.expected_max
    assert len(em) == 15 and (em["ci_low"] <= em["ci_high"]).all()
    assert "percentile of hybridsn's seeds" in sec.text[0] and "best of about" in sec.text[0]
    assert "below the seeds' mean" in sec.text[1]


def test_cli_claim_errors_exit_2(tmp_path, capsys) -> None:  # noqa: ANN001
    import pandas as pd

    from seedvar.cli import main

    csv = tmp_path / "r.csv"
    pd.DataFrame({"model": ["a"] * 3, "seed": [0, 1, 2], "acc": [1.0, 2.0, 3.0]}).to_csv(csv, index=False)
    for claim in ("nope=1", "a"):
        code = main(
            [
                "report",
                "--csv",
                str(csv),
                "--metric",
                "acc",
                "--by",
                "model",
                "--claim",
                claim,
                "--out",
                str(tmp_path / "out"),
            ]
        )
        assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such condition" in err[0]
