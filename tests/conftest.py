"""Shared fixtures and helpers: fresh and swept stores, the tiny synthetic scene the tests train on, polling
for an event, the benchmark scripts as modules; the real datasets folder (../shared/datasets) is found here
and only here. And the rule that CI runs everything: under $SEEDVAR_REQUIRE_ALL (set by .ci/run) a test that
would skip fails. Test modules import the helpers (`from conftest import TINY_SCENE, wait_for`).

Two tiers: `pytest -m "not slow" -n 2` (about a minute on 2 cores) and the whole suite (CI). A test that takes
more than about 5 s is marked `slow` (`@pytest.mark.slow`, or `pytestmark` for a whole module).

A user's clone may lack the shared datasets, PostgreSQL, Chromium or Ray: those tests skip and say why.
CI has them all, so there a skip would hide a test that silently stopped running. Only skips about the
machine itself (no GPU, or a GPU where a test needs none) stay skips.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# Tests address loopback only. Ray advertises even a local instance on the machine's network address;
# this setting (named for Windows and macOS, honoured on Linux too) keeps every node on 127.0.0.1. It must
# be in the environment before ray is imported, here or in a sweep the tests start.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# MLflow 3 sends usage telemetry to its servers unless told not to (it only checks for pytest when
# imported inside a running test, not at collection); tests reach nothing beyond loopback.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

_DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
REQUIRE_ALL = "SEEDVAR_REQUIRE_ALL"
MACHINE_SKIPS = ("CUDA",)  # a skip whose reason names these is about the hardware, not the setup


def _skip_reason(report: pytest.BaseReport) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


def _strict(report: pytest.BaseReport) -> None:
    """Under $SEEDVAR_REQUIRE_ALL, turn a skip (not an xfail, not a hardware skip) into a failure."""
    if not os.environ.get(REQUIRE_ALL) or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if any(word in reason for word in MACHINE_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped while ${REQUIRE_ALL} is set (CI must run this test): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    _strict(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield  # a module that skips as a whole (pytest.importorskip at its top)
    _strict(outcome.get_result())


# Under `--dist loadfile` a worker takes a whole module, in collection order (`--no-loadscope-reorder`:
# xdist would otherwise order modules by their number of tests); the longest go first, so that the two
# workers end together instead of one starting the Ray tests when the other is nearly done. Order: the
# modules' times in a full run on 2 cores (2026-12-03: server 295 s, ray 191, benchmarks 177, reliability
# 138, ui 114, package 82, report 82, lifecycle 77, twostage 69, coverage 45, tracked 38; the rest under 20 s);
# then the longest of the fast tier (`-m "not slow"`), whose slow modules are mostly deselected.
LONGEST_FIRST = (
    "test_server",
    "test_ray",
    "test_benchmarks",
    "test_reliability",
    "test_ui",
    "test_package",
    "test_report",
    "test_lifecycle",
    "test_twostage",
    "test_coverage",
    "test_tracked",
    "test_foreign",
    "test_nets",
    "test_data",
    "test_user_models",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        stem = Path(str(item.fspath)).stem
        return LONGEST_FIRST.index(stem) if stem in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the tests of a module keep their order


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of real datasets (Indian Pines, CIFAR-10 test batch); skips when it is absent."""
    root = Path(os.environ.get("SEEDVAR_SHARED_DATASETS", _DEFAULT_SHARED))
    if not (root / "indian_pines").is_dir() or not (root / "cifar10").is_dir():
        pytest.skip(
            f"real datasets not found at {root}: set SEEDVAR_SHARED_DATASETS to a folder holding "
            "indian_pines/ and cifar10/ (the layout of ../shared/datasets) to run this test"
        )
    return root


# The tests' tiny synthetic hyperspectral scene (123 training pixels, 290 test pixels): what their small
# sweeps train on, in seconds. A test that needs another size says so: {**TINY_SCENE, "height": 32, ...}.
TINY_SCENE: dict[str, Any] = {
    "name": "synthetic_hsi",
    "height": 24,
    "width": 24,
    "bands": 20,
    "pca": 13,
    "window": 9,
}


def scene_toml(**changes: Any) -> str:
    """The tiny scene as a spec's [dataset] table (TOML), with `changes` applied."""
    table = {**TINY_SCENE, **changes}
    return "[dataset]\n" + "".join(
        f'{key} = "{value}"\n' if isinstance(value, str) else f"{key} = {value}\n"
        for key, value in table.items()
    )


def wait_for(predicate: Callable[[], object], what: str = "condition", timeout: float = 300.0) -> None:
    """Poll for an event; the timeout is a safety net against a hang, never a claim about speed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def load_benchmark(name: str) -> ModuleType:
    """A script of benchmarks/ as a module (run_all has no .py suffix): its tests and the coverage checks
    run it in the test's process, which saves its start-up."""
    path = BENCHMARKS / name
    loader = SourceFileLoader(f"bench_{path.stem}", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite store, created once: copying it is far cheaper than running migrations."""
    from seedvar.record.store import Store

    folder = tmp_path_factory.mktemp("template") / "mlruns"
    Store(f"sqlite:///{folder}/mlflow.db")
    return folder / "mlflow.db"


@pytest.fixture(scope="session")
def new_store(_template_store: Path) -> Callable[[Path], str]:
    """`new_store(folder)`: a fresh, empty sqlite store at folder/mlflow.db (the folder made), its URI."""

    def make(folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(_template_store, folder / "mlflow.db")
        return f"sqlite:///{folder}/mlflow.db"

    return make


@pytest.fixture(scope="session")
def swept_store(new_store: Callable[[Path], str]) -> Callable[..., tuple[str, Any]]:
    """`swept_store(study, folder, **settings)`: a fresh store at folder/mlflow.db with the study swept into
    it (seedvar.sweep, one run at a time in this process, no progress bars): (its URI, the SweepResult)."""

    def sweep(study: Any, folder: Path, **settings: Any) -> tuple[str, Any]:
        import seedvar

        uri = new_store(folder)
        return uri, seedvar.sweep(study, tracking_uri=uri, **{"progress": False, "jobs": 1, **settings})

    return sweep


@pytest.fixture
def store_uri(tmp_path: Path, new_store: Callable[[Path], str]) -> str:
    """A fresh, empty sqlite store in this test's folder."""
    return new_store(tmp_path / "mlruns")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets one core: more torch threads than cores makes CPU runs crawl."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"  # for the seedvar subprocesses that tests start
        import torch

        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    """Figures a test drew and did not write (sections built without rendering) are closed after it, so a
    module that builds many reports does not hold every figure at once."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
