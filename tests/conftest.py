"""Shared fixtures: the real datasets folder (../shared/datasets) is found here and only here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


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


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite store, created once: copying it is far cheaper than running migrations."""
    from seedvar.record.store import Store

    folder = tmp_path_factory.mktemp("template") / "mlruns"
    Store(f"sqlite:///{folder}/mlflow.db")
    return folder / "mlflow.db"


@pytest.fixture
def store_uri(tmp_path: Path, _template_store: Path) -> str:
    """A fresh, empty sqlite store in this test's folder."""
    import shutil

    folder = tmp_path / "mlruns"
    folder.mkdir()
    shutil.copy(_template_store, folder / "mlflow.db")
    return f"sqlite:///{folder}/mlflow.db"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets one core: more torch threads than cores makes CPU runs crawl."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"  # for the seedvar subprocesses that tests start
        import torch

        torch.set_num_threads(1)
