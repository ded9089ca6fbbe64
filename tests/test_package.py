"""seedvar as a package: one namespace that leaves users' own `data`, `nets` and `study` alone, a wheel that
works outside the clone, ready studies found by name, and the Python API the CLI is built on."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_SCENE
from sweeps import spec_text

import seedvar
from seedvar.cli import main
from seedvar.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def tiny_spec(name: str, model: str) -> str:
    """The tests' tiny synthetic study (tests/sweeps.py) with another name and model."""
    return spec_text(name, epochs=1, replicates=2).replace('models = ["hybridsn"]', f'models = ["{model}"]')


def seedvar_cmd(
    *args: str, cwd: Path, python: str = sys.executable, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m seedvar ARGS` in a folder, as a user runs it there (no PYTHONPATH from the test)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [python, "-m", "seedvar", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_a_user_project_with_its_own_data_nets_and_study_packages(tmp_path):
    """The commonest folder names of ML code are the user's: their model imports their own `data.loaders`."""
    project = tmp_path / "project"
    for package in ("data", "nets", "study"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f'"""The user\'s own {package} package."""\n')
    (project / "data" / "loaders.py").write_text("hidden_width = 12\n")
    (project / "nets" / "blocks.py").write_text("from torch import nn\n\nACT = nn.ReLU\n")
    (project / "mynet.py").write_text(
        textwrap.dedent(
            """
            import math

            from torch import nn

            from data.loaders import hidden_width
            from nets.blocks import ACT


            def build(num_classes, in_shape, dropout=0.5):
                return nn.Sequential(
                    nn.Flatten(), nn.Linear(math.prod(in_shape), hidden_width), ACT(), nn.Dropout(dropout),
                    nn.Linear(hidden_width, num_classes),
                )
            """
        )
    )
    (project / "own.toml").write_text(tiny_spec("own", "mynet:build"))
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    sweep = seedvar_cmd(
        "sweep", "own.toml", "--tracking-uri", uri, "--no-progress", "--jobs", "1", cwd=project
    )
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert "[2/2] FINISHED mynet:build-det-r01" in sweep.stdout
    report = seedvar_cmd("report", "--experiment", "own", "--tracking-uri", uri, "--out", "rep", cwd=project)
    assert report.returncode == 0, report.stderr
    assert "mynet:build" in (project / "rep" / "tables" / "accuracy.csv").read_text()
    runs = seedvar.runs("own", uri)
    assert set(runs["model"]) == {"mynet:build"} and (runs["status"] == "FINISHED").all()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel --no-deps` of this tree (about 4 s), built once."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(ROOT),
            "-w",
            str(folder),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = folder.glob("seedvar-*.whl")
    return built


@pytest.mark.slow
def test_nothing_but_seedvar_is_installed_at_the_top_level(wheel):
    """The wheel holds one package, `seedvar` (with nets, data and the ready studies inside), nothing else."""
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"seedvar", f"{wheel.name.rsplit('-', 3)[0]}.dist-info"}
    for path in (
        "seedvar/nets/hybridsn.py",
        "seedvar/data/hsi.py",
        "seedvar/studies/quick.toml",
        "seedvar/api.py",
    ):
        assert path in names
    packages = {
        str(p.parent.relative_to(ROOT))
        for top in ("study", "nets", "data")
        for p in (ROOT / top).rglob("__init__.py")
    }
    mapped = {p.replace("study", "seedvar", 1) if p.startswith("study") else f"seedvar/{p}" for p in packages}
    assert all(f"{m}/__init__.py" in names for m in mapped), "a package of the tree is missing from the wheel"


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_runs_outside_the_clone(wheel, tmp_path):
    """pip wheel, a new venv, pip install the wheel; then from a folder outside the clone the quick study
    runs by name and `python -m seedvar --version` answers. The venv borrows seedvar's dependencies (torch,
    MLflow, ...) from this one through a path file, so the test installs 10 MB, not 6 GB; seedvar itself
    comes only from the wheel."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # every site-packages folder of this interpreter: a venv may itself borrow its dependencies through a
    # path file (a git worktree's venv does), and path files are not followed from a borrowed folder
    borrowed = dict.fromkeys(
        [sysconfig.get_paths()["purelib"], *(p for p in sys.path if p.endswith("site-packages"))]
    )
    (Path(site) / "borrowed-deps.pth").write_text("".join(f"{p}\n" for p in borrowed))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    where = subprocess.run(
        [
            python,
            "-c",
            "import seedvar, seedvar.nets, seedvar.data; print(seedvar.__file__, seedvar.nets.__file__)",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(site) for path in where.stdout.split()), where.stdout
    version = seedvar_cmd("--version", cwd=elsewhere, python=python)
    assert version.returncode == 0 and version.stdout.strip() == f"seedvar {seedvar.__version__}"
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    sweep = subprocess.run(
        [
            str(venv / "bin" / "seedvar"),
            "sweep",
            "quick",
            "--replicates",
            "1",
            "--epochs",
            "1",
            "--tracking-uri",
            uri,
            "--no-progress",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert "[1/1] FINISHED hybridsn-det-r00" in sweep.stdout and "hybridsn       eval" in sweep.stdout
    studies = subprocess.run(
        [str(venv / "bin" / "seedvar"), "studies"], cwd=elsewhere, capture_output=True, text=True
    )
    assert "quick" in studies.stdout and "2 CPU cores" in studies.stdout


def test_ready_studies_are_found_by_name_from_any_folder_and_a_path_wins(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    names = [s.name for s in seedvar.ready_studies()]
    assert {"quick", "lab", "paper", "sources", "leakage", "batchnorm", "cifar_lightweight"} <= set(names)
    assert all(s.description and s.runs_on for s in seedvar.ready_studies())
    assert (
        main(
            [
                "sweep",
                "quick",
                "--dry-run",
                "--replicates",
                "2",
                "--tracking-uri",
                f"sqlite:///{tmp_path}/m/mlflow.db",
            ]
        )
        == 0
    )
    assert "hybridsn-det-r01" in capsys.readouterr().out
    (tmp_path / "quick.toml").write_text(tiny_spec("mine", "hybridsn"))  # the user's own quick.toml
    assert (
        main(["sweep", "quick.toml", "--dry-run", "--tracking-uri", f"sqlite:///{tmp_path}/m/mlflow.db"]) == 0
    )
    assert "2 runs: 2 pending" in capsys.readouterr().out
    assert main(["studies"]) == 0
    listing = capsys.readouterr().out
    assert "quick" in listing and "a GPU" in listing and "2 CPU cores, ~4 min" in listing
    assert main(["sweep", "quikc"]) == 2
    assert "no such study spec, and no ready study of that name (ready: batchnorm" in capsys.readouterr().err


def test_version_and_python_dash_m(tmp_path):
    proc = seedvar_cmd("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"seedvar {seedvar.__version__}"
    assert seedvar.__version__ != "unknown"


@pytest.mark.slow
def test_the_api_sweeps_lists_runs_and_reports(tmp_path):
    """seedvar.sweep -> seedvar.runs -> seedvar.report, with a dict spec and keyword overrides."""
    uri = f"sqlite:///{tmp_path}/m/mlflow.db"
    spec = {
        "name": "api",
        "device": "cpu",
        "models": ["hybridsn"],
        "dataset": TINY_SCENE,
        "train": {"epochs": 2, "batch_size": 16},
        "seeds": {"replicates": 2},
        "test": {"passes": 3},
    }
    result = seedvar.sweep(
        spec, tracking_uri=uri, progress=False, jobs=1, replicates=3, **{"train.epochs": 1}
    )
    assert [o.status for o in result.outcomes] == ["FINISHED"] * 3
    assert (
        list(result.summary["mode"]) == ["eval", "train", "mc_dropout"]
        and (result.summary["runs"] == 3).all()
    )
    runs = seedvar.runs("api", tracking_uri=uri)
    assert len(runs) == 9 and set(runs["mode"]) == {"eval", "train", "mc_dropout"}
    assert runs["config_hash"].nunique() == 3 and runs["data_fingerprint"].str.len().eq(64).all()
    assert runs["seed.init"].nunique() == 3 and (runs["acc_mean"].between(0, 100)).all()
    train = runs[runs["mode"] == "train"]
    assert (train["passes"] == 3).all() and train["flip_rate"].notna().all()
    # the runs table agrees with the sweep's own summary (mean of run means = pooled mean: equal passes)
    mean = runs[runs["mode"] == "eval"]["acc_mean"].mean()
    assert mean == pytest.approx(result.summary.set_index("mode").loc["eval", "mean"])

    rep = seedvar.report("api", tracking_uri=uri)  # no folder: tables only
    assert rep.folder is None and rep.answer and isinstance(rep.tables["accuracy"], pd.DataFrame)
    assert set(rep.tables["accuracy"]["mode"]) == {"eval", "train", "mc_dropout"}
    # one interval of a condition's mean: the sweep's table and the report give the same
    ours = result.summary.set_index("mode")[["ci_low", "ci_high"]]
    theirs = rep.tables["accuracy"].set_index("mode")[["ci_low", "ci_high"]]
    assert ours.loc[list(theirs.index)].to_numpy() == pytest.approx(theirs.to_numpy(), abs=1e-9)
    cells = seedvar.samples("api", tracking_uri=uri)  # the one shape the report's tables start from
    assert list(cells) == [("hybridsn", m) for m in ("eval", "train", "mc_dropout")]
    train = cells["hybridsn", "train"]
    assert [len(p) for p in train.per_pass()] == [3, 3, 3]
    assert (train.interval().ci_low, train.interval().ci_high) == pytest.approx(tuple(theirs.loc["train"]))
    with pytest.raises(UserError, match="nope"):
        seedvar.samples("nope", tracking_uri=uri)
    written = seedvar.report("api", tmp_path / "rep", tracking_uri=uri, formats=["md"])
    assert (written.folder / "report.md").exists() and (written.folder / "tables" / "accuracy.csv").exists()
    again = seedvar.sweep(spec, tracking_uri=uri, progress=False, replicates=3, **{"train.epochs": 1})
    assert again.outcomes == [] and again.parent_id is None  # nothing left to do, nothing recorded

    with pytest.raises(UserError, match="unknown sweep setting 'epoch'"):
        seedvar.sweep(spec, tracking_uri=uri, epoch=3)
    with pytest.raises(UserError, match="no study named 'nope'"):
        seedvar.runs("nope", tracking_uri=uri)


@pytest.mark.slow
def test_ci_fails_where_a_users_clone_skips(tmp_path):
    """A test that skips for want of something CI has (a dataset, a server, a browser) fails under
    $SEEDVAR_REQUIRE_ALL, which .ci/run sets; a user's clone still skips it, saying why; a skip about the
    hardware (no GPU) stays a skip everywhere."""
    import shutil

    tests = Path(__file__).resolve().parent
    assert "export SEEDVAR_REQUIRE_ALL=1" in (tests.parent / ".ci" / "run").read_text()
    shutil.copy(tests / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_needs.py").write_text(
        "import pytest\n\n"
        "def test_needs_postgres():\n    pytest.skip('PostgreSQL server binaries not found')\n\n"
        "@pytest.mark.skipif(True, reason='needs CUDA')\ndef test_needs_a_gpu():\n    pass\n"
    )
    (tmp_path / "test_needs_ray.py").write_text(
        "import pytest\n\nray = pytest.importorskip('no_such_module_here', reason='ray is not installed')\n\n"
        "def test_ray():\n    pass\n"
    )

    def outcome(test: str, **env: str) -> str:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", test],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k != "SEEDVAR_REQUIRE_ALL"} | env,
            timeout=300,
        )
        return run.stdout

    clone = outcome(".")
    assert "3 skipped" in clone and "PostgreSQL server binaries not found" in clone, clone
    ci = outcome("test_needs.py", SEEDVAR_REQUIRE_ALL="1")
    assert "1 failed, 1 skipped" in ci and "SKIPPED [1] test_needs.py:6: needs CUDA" in ci, ci
    assert "CI must run this test): Skipped: PostgreSQL server binaries not found" in ci, ci
    ci = outcome("test_needs_ray.py", SEEDVAR_REQUIRE_ALL="1")  # a module skipped whole: an error too
    assert "1 error" in ci and "CI must run this test): Skipped: ray is not installed" in ci, ci


def test_the_readme_names_a_test_for_each_fault_and_each_exists():
    """The README's table of faults names the test that injects each one: a renamed or deleted test must
    not leave the README promising what nothing checks any more."""
    import re

    root = Path(__file__).resolve().parents[1]
    readme = root / "README.md"
    section = readme.read_text().split("## Reliability", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) >= 10, rows
    for row in rows:
        cell = row.rstrip(" |").rsplit(" | ", 1)[1]
        names = re.findall(r"`(?:(test_\w+\.py)::)?(test_\w+)`", cell)
        assert names, row
        file = None
        for path, name in names:
            file = path or file
            assert file and f"def {name}(" in (root / "tests" / file).read_text(), (file, name)
