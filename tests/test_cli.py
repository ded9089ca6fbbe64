"""The command line: `seedvar models`, and a matrix of bad inputs that must each end as one clear line,
exit status 2, no traceback, and a store left exactly as it was."""

from __future__ import annotations

import os
import pickle
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from conftest import scene_toml
from mlflow import MlflowClient

import seedvar.nets as nets
from seedvar.cli import main
from seedvar.errors import UserError
from seedvar.record.store import Store

README = Path(__file__).resolve().parents[1] / "README.md"
GOOD = (
    """
name = "{name}"
device = "cpu"
models = ["hybridsn"]
"""
    + scene_toml()
    + """[train]
epochs = 1
[seeds]
replicates = 1
[test]
passes = 2
"""
)


@pytest.fixture(scope="module")
def world(tmp_path_factory, new_store):
    """A store holding one finished study, plus broken data files and specs to throw at the CLI."""
    root = tmp_path_factory.mktemp("cli")
    uri = new_store(root / "mlruns")
    good = root / "good.toml"
    good.write_text(GOOD.format(name="base"))
    assert main(["sweep", str(good), "--tracking-uri", uri, "--no-progress"]) == 0

    data = root / "data"
    cube = np.random.default_rng(0).integers(0, 1000, (12, 12, 20)).astype(np.uint16)
    gt = np.zeros((12, 12), np.uint8)
    gt[:6] = 1
    gt[6:] = 2
    gt[0, 0] = 3  # a class with a single pixel: cannot be split
    (data / "mats").mkdir(parents=True)
    scipy.io.savemat(data / "mats" / "cube.mat", {"cube": cube})
    scipy.io.savemat(data / "mats" / "gt.mat", {"gt": gt})
    blob = (data / "mats" / "cube.mat").read_bytes()
    (data / "mats" / "truncated.mat").write_bytes(blob[: len(blob) // 3])
    cifar = data / "cifar10" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    with open(cifar / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((10, 100), np.uint8), "labels": list(range(10))}, f)
    (root / "a_file").write_text("not a folder")
    (root / "usernets.py").write_text(
        "from torch import nn\n\n"
        "def wrong_signature(num_classes):\n    return nn.Linear(1, num_classes)\n\n"
        "def flat(num_classes, in_shape, *, width=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, num_classes))\n"
    )
    (root / "garbage.db").write_bytes(b"this is not sqlite" * 100)
    with socket.socket() as closed:  # a port nothing listens on (bound, never listening: refused)
        closed.bind(("127.0.0.1", 0))
        with socket.socket() as busy:  # a port some other program listens on
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            yield {
                "root": root,
                "uri": uri,
                "good": good,
                "data": data,
                "busy_port": busy.getsockname()[1],
                "closed_port": closed.getsockname()[1],
            }


def snapshot(uri: str) -> list:
    """Every run of every experiment with its status, params, metrics and tags."""
    client = MlflowClient(uri)
    Store(uri)  # the retrying, one-line-error way in: the store must still open
    out = []
    for exp in client.search_experiments():
        out.append((exp.name, "experiment tags", "", [], [], sorted(exp.tags.items())))  # the UI's view
        for run in client.search_runs([exp.experiment_id]):
            out.append(
                (
                    exp.name,
                    run.info.run_id,
                    run.info.status,
                    sorted(run.data.params.items()),
                    sorted(run.data.metrics.items()),
                    sorted(run.data.tags.items()),
                )
            )
    return sorted(out)


def spec_file(world, name: str, text: str) -> str:
    path = world["root"] / f"{name}.toml"
    path.write_text(text)
    return str(path)


def variant(world, name: str, old: str, new: str) -> str:
    text = GOOD.format(name=name)
    assert old in text, old
    return spec_file(world, name, text.replace(old, new, 1))


def hsi_mat(world, name: str, **options: str) -> str:
    mats = world["data"] / "mats"
    opts = {
        "cube_path": f'"{mats / "cube.mat"}"',
        "gt_path": f'"{mats / "gt.mat"}"',
        "window": "9",
        "pca": "13",
    }
    opts.update(options)
    body = "\n".join(f"{k} = {v}" for k, v in opts.items())
    return spec_file(
        world,
        name,
        f'name = "{name}"\ndevice = "cpu"\nmodels = ["hybridsn"]\n[dataset]\nname = "hsi_mat"\n{body}\n',
    )


def cases(world) -> list[tuple[str, list[str], str]]:
    """(id, argv, a phrase the one-line message must contain)."""
    uri, good, root = world["uri"], str(world["good"]), world["root"]
    store = ["--tracking-uri", uri]
    sweep = ["sweep", good, *store]
    c = [
        ("unknown model", [*sweep, "--models", "resnet9000"], "unknown model"),
        ("unknown model in spec", ["sweep", variant(world, "m1", '"hybridsn"', '"lenet"'), *store], "lenet"),
        ("unknown dataset", ["sweep", variant(world, "d1", '"synthetic_hsi"', '"mnist"'), *store], "mnist"),
        ("malformed toml", ["sweep", spec_file(world, "bad", "name = [\n"), *store], "not valid TOML"),
        (
            "unknown top-level key",
            ["sweep", variant(world, "k1", 'device = "cpu"', 'colour = 1\ndevice = "cpu"'), *store],
            ": colour: unknown key",
        ),
        (
            "unknown train key",
            ["sweep", variant(world, "k2", "epochs = 1", "epochs = 1\nepochz = 2"), *store],
            "train.epochz",
        ),
        (
            "wrong type",
            ["sweep", variant(world, "t1", "epochs = 1", 'epochs = "ten"'), *store],
            "train.epochs",
        ),
        ("zero epochs", [*sweep, "--epochs", "0"], "train.epochs"),
        (
            "negative epochs",
            ["sweep", variant(world, "e1", "epochs = 1", "epochs = -5"), *store],
            "train.epochs",
        ),
        ("zero passes", ["sweep", variant(world, "p1", "passes = 2", "passes = 0"), *store], "test.passes"),
        ("even window", ["sweep", variant(world, "w1", "window = 9", "window = 10"), *store], "window"),
        (
            "window too small for hybridsn",
            ["sweep", variant(world, "w2", "window = 9", "window = 5"), *store],
            "hybridsn",
        ),
        (
            "window of the wrong type",
            ["sweep", variant(world, "w3", "window = 9", 'window = "big"'), *store],
            "window",
        ),
        ("pca above bands", ["sweep", variant(world, "pc", "pca = 13", "pca = 41"), *store], "pca"),
        (
            "window larger than the scene",
            ["sweep", variant(world, "w4", "window = 9", "window = 201"), *store],
            "larger than the 24x24 scene",
        ),
        (
            "unknown split",
            ["sweep", variant(world, "sp", "window = 9", 'window = 9\nsplit = "checkerboard"'), *store],
            "option split",
        ),
        (
            "one listed value is impossible",
            ["sweep", variant(world, "sp2", "window = 9", "window = [9, 25]"), *store],
            "(window=25): option window=25 is larger",
        ),
        (
            "a list of lists",
            ["sweep", variant(world, "sp3", "window = 9", "window = [[9]]"), *store],
            "dataset.window: a list of values",
        ),
        (
            "train fraction zero",
            ["sweep", variant(world, "f0", "window = 9", "window = 9\ntrain_fraction = 0.0"), *store],
            "train_fraction",
        ),
        (
            "train fraction above one",
            ["sweep", variant(world, "f1", "window = 9", "window = 9\ntrain_fraction = 1.5"), *store],
            "train_fraction",
        ),
        ("class too small to split", ["sweep", hsi_mat(world, "few"), *store], "pixel"),
        (
            "missing data, download off",
            [
                "sweep",
                spec_file(world, "sal", 'name = "sal"\nmodels = ["hybridsn"]\n[dataset]\nname = "salinas"\n'),
                *store,
                "--data-root",
                str(root / "empty"),
            ],
            "Salinas",
        ),
        (
            "truncated mat",
            [
                "sweep",
                hsi_mat(world, "trunc", cube_path=f'"{world["data"] / "mats" / "truncated.mat"}"'),
                *store,
            ],
            "truncated.mat",
        ),
        ("mat without the variable", ["sweep", hsi_mat(world, "var", cube_key='"nope"'), *store], "nope"),
        (
            "cifar batch of the wrong shape",
            [
                "sweep",
                spec_file(
                    world,
                    "cif",
                    'name = "cif"\nmodels = ["mobilenet_v2"]\n'
                    '[dataset]\nname = "cifar10"\npool = "test_batch"\ntrain_size = 10\ntest_size = 10\n',
                ),
                *store,
                "--data-root",
                str(world["data"]),
            ],
            "test_batch",
        ),
        (
            "unwritable store folder",
            ["sweep", good, "--tracking-uri", f"sqlite:///{root}/a_file/mlflow.db"],
            "cannot write",
        ),
        (
            "unreachable tracking server",
            ["sweep", good, "--tracking-uri", "http://127.0.0.1:9"],
            "cannot reach",
        ),
        (
            "corrupt store",
            ["report", "--experiment", "base", "--tracking-uri", f"sqlite:///{root}/garbage.db"],
            "cannot open",
        ),
        (
            "report of an unknown experiment",
            ["report", "--experiment", "nope", *store],
            "no experiment named 'nope'",
        ),
        (
            "report folder not writable",
            ["report", "--experiment", "base", *store, "--out", str(root / "a_file" / "r")],
            "cannot write",
        ),
        ("report format", ["report", "--experiment", "base", *store, "--format", "pdf"], "--format"),
        ("missing spec", ["sweep", str(root / "nope.toml"), *store], "no such study spec"),
        ("--set without value", [*sweep, "--set", "train.lr"], "KEY=VALUE"),
        ("--set negative lr", [*sweep, "--set", "train.lr=-1"], "train.lr"),
        ("--jobs 0", [*sweep, "--jobs", "0"], "--jobs"),
        ("--replicates 0", [*sweep, "--replicates", "0"], "seeds.replicates"),
        ("--checkpoint-every negative", [*sweep, "--checkpoint-every", "-1"], "--checkpoint-every"),
        (
            "unknown model option",
            [
                "sweep",
                variant(world, "mo", "[train]", "[model_options.hybridsn]\nwidht = 2\n[train]"),
                *store,
            ],
            "widht",
        ),
        (
            "unknown source",
            ["sweep", variant(world, "src", "replicates = 1", 'replicates = 1\nvary = ["weather"]'), *store],
            "seeds.vary",
        ),
        (
            "unknown test mode",
            ["sweep", variant(world, "tm", "passes = 2", 'passes = 2\nmodes = ["exam"]'), *store],
            "test.modes",
        ),
        (
            "deterministic maybe",
            [
                "sweep",
                variant(world, "det", 'device = "cpu"', 'device = "cpu"\ndeterministic = "maybe"'),
                *store,
            ],
            "deterministic",
        ),
        (
            "ui without a store",
            ["ui", "--tracking-uri", f"sqlite:///{root}/none/mlflow.db"],
            "no MLflow store",
        ),
        (
            "import path of a missing module",
            ["sweep", variant(world, "u1", '"hybridsn"', '"nosuchpkg.nets:build"'), *store],
            "cannot import 'nosuchpkg.nets'",
        ),
        (
            "import path without the attribute",
            ["sweep", variant(world, "u2", '"hybridsn"', '"usernets:bild"'), *store],
            "has no attribute 'bild'",
        ),
        (
            "callable of the wrong signature",
            [*sweep, "--models", "usernets:wrong_signature"],
            "cannot take (num_classes, in_shape, **options)",
        ),
        (
            "own model that cannot take the input",
            ["sweep", variant(world, "u3", '"hybridsn"', '"usernets:flat"'), *store],
            "usernets:flat cannot train on synthetic_hsi",
        ),
        (
            "own model with an unknown option",
            [
                "sweep",
                variant(
                    world,
                    "u4",
                    '"hybridsn"',
                    '"usernets:flat"]\n[model_options."usernets:flat"]\ndepth = 3\n#[',
                ),
                *store,
            ],
            "unknown option(s) depth",
        ),
        (
            "unknown torchvision dataset",
            ["sweep", variant(world, "tv1", '"synthetic_hsi"', '"torchvision:FashionMnist"'), *store],
            "did you mean 'torchvision:FashionMNIST'",
        ),
        (
            "torchvision dataset that is not classification",
            ["sweep", variant(world, "tv2", '"synthetic_hsi"', '"torchvision:CocoDetection"'), *store],
            "class index",
        ),
        (
            "torchvision dataset missing, download off",
            [
                "sweep",
                spec_file(
                    world,
                    "tv3",
                    'name = "tv3"\nmodels = ["hybridsn"]\n[dataset]\nname = "torchvision:MNIST"\n',
                ),
                *store,
                "--data-root",
                str(root / "empty"),
            ],
            "--download",
        ),
        (
            "image_folder without a path",
            [
                "sweep",
                spec_file(
                    world, "if1", 'name = "if1"\nmodels = ["hybridsn"]\n[dataset]\nname = "image_folder"\n'
                ),
                *store,
            ],
            "needs path",
        ),
        (
            "image_folder path that is no folder",
            [
                "sweep",
                spec_file(
                    world,
                    "if2",
                    f'name = "if2"\nmodels = ["hybridsn"]\n[dataset]\nname = "image_folder"\npath = "{root / "a_file"}"\n',
                ),
                *store,
            ],
            "is not a folder",
        ),
        ("ui of an unknown study", ["ui", *store, "--experiment", "nope"], "no study named 'nope'"),
        ("ui on a busy port", ["ui", *store, "--port", str(world["busy_port"])], "in use"),
        ("ui on port 0", ["ui", *store, "--port", "0"], "--port"),
        ("ui of an unreachable server", ["ui", "--tracking-uri", "http://127.0.0.1:9"], "cannot reach"),
        ("ui of a file store", ["ui", "--tracking-uri", f"file://{root}/mlruns"], "neither a local sqlite"),
        (
            "dry run of an unknown split",
            [
                "sweep",
                variant(world, "dr1", "window = 9", 'window = 9\nsplit = "bogus"'),
                *store,
                "--dry-run",
            ],
            "option split must be",
        ),
        (
            "dry run of a block as large as the scene",
            [
                "sweep",
                variant(world, "dr2", "window = 9", 'window = 9\nsplit = "spatial"\nblock = 500'),
                *store,
                "--dry-run",
            ],
            "option block=500 makes the 24x24 scene a single block",
        ),
        (
            "dry run of an unknown executor",
            [
                "sweep",
                variant(world, "dr3", "[seeds]", '[execution]\nexecutor = "slurm"\n[seeds]'),
                *store,
                "--dry-run",
            ],
            "execution.executor (--executor): must be one of local, ray, got 'slurm'",
        ),
        (
            "unknown execution key",
            [
                "sweep",
                variant(world, "ex1", "[seeds]", "[execution]\njobz = 2\n[seeds]"),
                *store,
                "--dry-run",
            ],
            "execution.jobz: unknown key",
        ),
        ("--runs-per-gpu 0", [*sweep, "--runs-per-gpu", "0"], "execution.runs_per_gpu (--runs-per-gpu)"),
        ("--claim-timeout 0", [*sweep, "--claim-timeout", "0"], "execution.claim_timeout (--claim-timeout)"),
        ("--ray-address without ray", [*sweep, "--ray-address", "auto"], "only applies to the ray executor"),
        (
            "ray cluster address where nothing listens",
            [*sweep, "--executor", "ray", "--ray-address", f"127.0.0.1:{world['closed_port']}"],
            f"cannot reach a Ray cluster at 127.0.0.1:{world['closed_port']}",
        ),
        (
            "server on a database that is not there",
            ["server", "--backend-store-uri", f"postgresql://nouser@127.0.0.1:{world['closed_port']}/db"],
            "cannot connect to the database postgresql://nouser@127.0.0.1",
        ),
        ("models with a bad shape", ["models", "--input-shape", "three"], "--input-shape"),
        ("models with zero classes", ["models", "--classes", "0"], "--classes"),
        ("models with a bad import path", ["models", "usernets:nothing"], "has no attribute 'nothing'"),
        ("models with an unknown name", ["models", "alexnet"], "unknown model"),
    ]
    if not torch.cuda.is_available():
        c.append(("cuda without a gpu", [*sweep, "--device", "cuda"], "CUDA"))
    return c


def test_bad_inputs_one_line_exit_2_store_unchanged(world, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(world["root"]))  # usernets.py, as if seedvar ran in that folder
    before = snapshot(world["uri"])
    matrix = cases(world)
    # README.md states how many: the count on a machine without a GPU, where CUDA is one more bad input
    stated = re.search(r"(\d+) such inputs go through the command line", README.read_text())
    assert stated, "README.md no longer states how many bad inputs the command line test throws"
    assert len(matrix) == int(stated[1]) - torch.cuda.is_available(), "update README.md's count"
    assert len({name for name, _, _ in matrix}) == len(matrix)  # each case counted once
    failures = []
    for name, argv, phrase in matrix:
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err.strip()
        lines = err.splitlines()
        if code != 2 or len(lines) != 1 or not lines[0].startswith("seedvar: error: ") or phrase not in err:
            failures.append(f"{name}: exit {code}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert snapshot(world["uri"]) == before
    assert not (world["root"] / "a_file").is_dir()


def test_what_changes_results_makes_new_runs_and_where_runs_run_does_not(world, capsys):
    """train.* settings that change the weights (bf16 autocast, a cosine schedule, the CPU thread count)
    are part of a run's config: a run finished without them is not taken for one with them. Execution
    settings never are: results do not depend on where, or how many at once, runs ran."""
    dry = ["sweep", str(world["good"]), "--tracking-uri", world["uri"], "--dry-run"]
    assert main(dry) == 0 and "1 runs: 1 done" in capsys.readouterr().out
    for setting in ('train.precision="bf16"', 'train.schedule="cosine"', "train.threads=2"):
        assert main([*dry, "--set", setting]) == 0
        assert "1 runs: 1 pending" in capsys.readouterr().out, setting
    execution = ["--runs-per-gpu", "4", "--jobs", "3", "--checkpoint-every", "0", "--claim-timeout", "5"]
    assert main([*dry, *execution, "--retry-for", "1"]) == 0
    assert "1 runs: 1 done" in capsys.readouterr().out


def test_debug_shows_the_traceback(world):
    with pytest.raises(UserError):
        main(["--debug", "sweep", str(world["good"]), "--tracking-uri", world["uri"], "--epochs", "0"])


@pytest.mark.slow
def test_console_script_prints_no_traceback(world):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seedvar",
            "sweep",
            str(world["good"]),
            "--tracking-uri",
            world["uri"],
            "--models",
            "vgg",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("seedvar: error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_models_lists_every_model_with_params_and_macs(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in nets.list_models():
        assert name in out
    assert "5,122,176" in out  # hybridsn at its default 30 bands, 25x25, 16 classes
    assert "MACs" in out
    assert main(["models", "mobilenet_v2", "--input-shape", "3,224,224", "--classes", "1000"]) == 0
    assert "3,504,872" in capsys.readouterr().out


def test_dry_run_prints_the_plan_without_touching_a_new_store(world, capsys, tmp_path):
    uri = f"sqlite:///{tmp_path}/fresh/mlflow.db"
    assert main(["sweep", str(world["good"]), "--tracking-uri", uri, "--dry-run", "--replicates", "3"]) == 0
    out = capsys.readouterr().out
    assert "hybridsn-det-r02" in out and "3 runs: 3 pending" in out
    assert not (tmp_path / "fresh").exists()
    assert main(["sweep", str(world["good"]), "--tracking-uri", world["uri"], "--dry-run"]) == 0
    assert "1 runs: 1 done" in capsys.readouterr().out


@pytest.mark.slow
def test_a_batch_larger_than_the_training_set_is_refused_in_one_line(world, capsys, tmp_path):
    spec = variant(world, "huge", "epochs = 1", "epochs = 1\nbatch_size = 100000")
    store = tmp_path / "m"
    args = ["sweep", spec, "--tracking-uri", f"sqlite:///{store}/mlflow.db", "--no-progress"]
    assert main(args) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert "train.batch_size = 100,000 exceeds the 123 training samples of synthetic_hsi" in line
    assert "use at most 123" in line and "Traceback" not in captured.err
    assert not store.exists()  # refused before the store is touched
    assert main([*args, "--set", "train.batch_size=123"]) == 0  # a full batch is allowed


def test_python_dash_m_seedvar_is_the_same_command():
    proc = subprocess.run(
        [sys.executable, "-m", "seedvar", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "sweep" in proc.stdout and "report" in proc.stdout and "ui" in proc.stdout


def test_shipped_specs_exist_for_the_readme():
    studies = Path(__file__).resolve().parents[1] / "studies"
    assert {p.name for p in studies.glob("*.toml")} >= {
        "quick.toml",
        "lab.toml",
        "cifar_lightweight.toml",
        "sources.toml",
    }
