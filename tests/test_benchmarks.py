"""Smoke test of the speed benchmarks: each runs in --quick mode and prints its result lines.

No timing is asserted (this machine is shared, timings are noise here); what is checked is that every
benchmark runs, prints `name: seedvar X, baseline Y, ratio R`, and that its equality checks hold.
The benchmarks run in this process (imported by path), which saves their ~6 s start-up each.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch
from conftest import load_benchmark

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
RESULT = re.compile(r"^([\w.+-]+): seedvar (.+?), baseline (.+?), ratio ([\d.]+)x?$", re.M)


def bounds(text: str) -> tuple[float, float]:
    """The interval the first number printed in `text` stands for: "1.17 s" is 1.165 to 1.175."""
    digits = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    assert digits, f"no number in {text!r}"
    number = digits[0].replace(",", "")
    half = 0.5 * 10 ** -len(number.partition(".")[2])
    return float(number) - half, float(number) + half


def ratio_of(seedvar: str, baseline: str, ratio: str) -> bool:
    """The printed ratio is seedvar / baseline or baseline / seedvar (a speed-up), up to the rounding of
    the three printed numbers."""
    (a_lo, a_hi), (b_lo, b_hi), (r_lo, r_hi) = bounds(seedvar), bounds(baseline), bounds(ratio)
    if r_hi <= 0:
        return False

    def quotient(n_lo: float, n_hi: float, d_lo: float, d_hi: float) -> tuple[float, float]:
        return (n_lo / d_hi if d_hi > 0 else 0.0), (n_hi / d_lo if d_lo > 0 else float("inf"))

    for lo, hi in (quotient(a_lo, a_hi, b_lo, b_hi), quotient(b_lo, b_hi, a_lo, a_hi)):
        if lo <= r_hi and r_lo <= hi:
            return True
    return False


@pytest.fixture
def torch_state():
    """Benchmarks set threads and determinism as runs do; give the rest of the session its own back."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "names", "claims"),
    [
        ("kpass.py", ["k_pass", "k_pass_lab_subset"], ["identical predictions: True"]),
        ("overhead.py", ["overhead"], ["weights equal the plain loop's: True"]),
        (
            "loader.py",
            ["loader"],
            [
                "batches equal the lab pipeline's ToTensor + Normalize (augmentation off): True",
                "an augmented epoch serves every training image once: True",
            ],
        ),
        (
            "tracking.py",
            ["tracking"],
            [
                "every epoch and test pass read back once, as logged: True",
                "the run FINISHED with its predictions: True",
            ],
        ),
        ("sweep.py", ["sweep"], ["identical weights sha256 with jobs=2 and jobs=1: True"]),
        ("executors.py", ["executor_ray"], ["identical weights sha256 per config: True"]),
        ("writers.py", ["writers_2", "writers_4"], ["4/4 runs finished"]),
        (
            "foreign_scale.py --no-server",  # the server's paged read is in test_foreign.py
            ["foreign_60_sqlite"],
            ["foreign_60_sqlite: the report counted 60 runs, as many as the search returned"],
        ),
        (
            "startup.py",
            ["startup_help", "startup_csv_report"],
            ["startup: the CSV report loaded, of mlflow, sqlalchemy, torch, scipy, fastapi: scipy"],
        ),
        (
            "report_scale.py",
            ["report_6_sqlite", "report_second", "report_6_server"],
            [  # the second report, after 2 new runs, reads only those 2
                "sqlite, 6 runs: read 6 runs from the store",
                "sqlite, second report, 8 runs: read 2 runs from the store",
                "server, 6 runs: read 6 runs from the store",
                "server, second report, 8 runs: read 2 runs from the store",
            ],
        ),
    ],
)
def test_benchmark_quick(script, names, claims, capsys, torch_state):
    if (
        script in ("writers.py", "report_scale.py", "foreign_scale.py")
        and load_benchmark("_postgres.py").bin_dir() is None
    ):
        pytest.skip(f"PostgreSQL binaries not found: {script} starts a throwaway cluster")
    if script == "executors.py" and importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed: pip install -e '.[ray]'")
    script, *args = script.split()
    load_benchmark(script).main(["--quick", *args])
    if script == "executors.py":
        import ray

        assert not ray.is_initialized()  # the local Ray instance the sweep started is gone
    out = capsys.readouterr().out
    found = {m[0]: m for m in RESULT.findall(out)}
    assert sorted(found) == sorted(names), out
    for name, seedvar, baseline, ratio in found.values():
        assert ratio_of(seedvar, baseline, ratio), f"{name}: ratio {ratio} is not {seedvar} / {baseline}"
    for claim in claims:
        assert claim in out, out


@pytest.mark.slow
def test_cifar_epoch_quick(capsys, torch_state):
    bench = load_benchmark("cifar_epoch.py")
    bench.main(["--quick"])
    out = capsys.readouterr().out
    models = re.findall(r"^cifar_epoch (\w+): [\d.]+ s/epoch, [\d,]+ img/s$", out, re.M)
    assert models == bench.image_models() and "hybridsn" not in models, out


def test_cuda_requested_without_cuda_exits_2(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exc:
        load_benchmark("kpass.py").main(["--device", "cuda"])
    assert exc.value.code == 2
    assert "CUDA" in capsys.readouterr().err


def test_run_all_table_goals_and_crashes(tmp_path):
    run_all = load_benchmark("run_all")
    assert "cifar_epoch.py" not in run_all.scripts("cpu", quick=False)
    assert "cifar_epoch.py" in run_all.scripts("cuda", quick=False)
    kpass = run_all.Outcome("kpass.py", 60.0, 0, details=["k_pass: identical predictions: True"])
    kpass.rows.append(run_all.Row("k_pass", "1.50 s", "31.0 s", 20.7))
    over = run_all.Outcome(
        "overhead.py", 30.0, 0, details=["overhead: seedvar weights equal the plain loop's: True"]
    )
    over.rows.append(run_all.Row("overhead", "0.700 s", "0.600 s", 1.167))
    crashed = run_all.Outcome("sweep.py", 5.0, 1, error="exit 1: RuntimeError: boom")
    cifar = run_all.Outcome(
        "cifar_epoch.py",
        90.0,
        0,
        details=["cifar_epoch senet18: 20.1 s/epoch, 2,487 img/s; bf16 12.0 s/epoch, 4,166 img/s"],
    )
    args = run_all.argparse.Namespace(device="cpu", quick=False)
    text = run_all.table([kpass, over, crashed, cifar], args, 100.0)
    assert "| benchmark | seedvar | baseline | ratio | goal | met? |" in text
    assert "| k_pass | 1.50 s | 31.0 s | 20.7x | >= 10x faster, identical predictions | yes |" in text
    assert "| overhead | 0.700 s | 0.600 s | 1.167x |" in text and "| **no** |" in text
    assert "**crashed**" in text and "RuntimeError: boom" in text
    assert "torch " in text and "cores" in text
    assert "| model | fp32 | bf16 |" in text
    assert "| senet18 | 20.1 s/epoch, 2,487 img/s | 12.0 s/epoch, 4,166 img/s |" in text
    quick = run_all.table([kpass], run_all.argparse.Namespace(device="cpu", quick=True), 1.0)
    assert "| yes |" not in quick and "| - |" in quick  # tiny sizes: goals not judged
    m = run_all.RESULT.match("loader: seedvar 149,403 img/s, baseline 4,549 img/s, ratio 32.8")
    assert m and run_all.number(m["seedvar"]) == 149403
