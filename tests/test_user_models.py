"""A user's own models: by import path or entry point, hashed by their source, tested in every mode.

A package is written into a temp folder (with a dist-info that registers an entry point, as pip would),
so nothing is installed; importlib.metadata finds it on sys.path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

import seedvar.data as data
import seedvar.nets as nets
from seedvar.cli import main
from seedvar.engine import compute, evaluate
from seedvar.engine.evaluate import Split, find_split, run_passes
from seedvar.engine.train import weights_sha256
from seedvar.nets.registry import _USER
from seedvar.plan import expand, load_study, parse_study, pass_seeds
from seedvar.record import schema

ROOT = Path(__file__).resolve().parents[1]

USER_NETS = '''
"""A user's own models, outside seedvar."""
import math

import torch.nn.functional as F
from torch import nn


def build_chain(num_classes, in_shape, *, width=8, dropout=0.5):
    """A plain nn.Sequential: a conv trunk, then a head with dropout inside a nested Sequential."""
    return nn.Sequential(
        nn.Conv2d(in_shape[0], width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Sequential(nn.Linear(4 * width, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, num_classes)),
    )


class Declared(nn.Module):
    """Declares forward_features / forward_head; with wrong=True its trunk holds the dropout."""

    def __init__(self, num_classes, in_shape, dropout=0.5, wrong=False):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), 32), nn.ReLU())
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(32, num_classes)
        self.wrong = wrong

    def forward_features(self, x):
        f = self.body(x)
        return self.drop(f) if self.wrong else f

    def forward_head(self, f):
        return self.out(f if self.wrong else self.drop(f))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def build_declared(num_classes, in_shape, dropout=0.5):
    return Declared(num_classes, in_shape, dropout)


def build_wrong_split(num_classes, in_shape, dropout=0.5):
    return Declared(num_classes, in_shape, dropout, wrong=True)


class Functional(nn.Module):
    """Its children look like a chain, but forward adds a functional dropout between them."""

    def __init__(self, num_classes, in_shape):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), 32), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(32, num_classes))

    def forward(self, x):
        return self.head(F.dropout(self.body(x), 0.3, self.training))


class Reshaping(nn.Module):
    """Its children do not chain: forward flattens between them."""

    def __init__(self, num_classes, in_shape):
        super().__init__()
        self.conv = nn.Conv2d(in_shape[0], 4, 3, padding=1)
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(4 * in_shape[1] * in_shape[2], num_classes))

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))


def wrong_signature(num_classes):
    return nn.Linear(1, num_classes)


def needs_depth(num_classes, in_shape, *, depth):
    return nn.Sequential(nn.Flatten(), *[nn.Identity()] * depth, nn.LazyLinear(num_classes))


not_callable = 3
'''


@pytest.fixture(scope="module")
def user_pkg(tmp_path_factory):
    """`mypkg.nets` in a folder on sys.path, and a dist-info registering `tinynet` as an entry point."""
    folder = tmp_path_factory.mktemp("userpkg")
    (folder / "mypkg").mkdir()
    (folder / "mypkg" / "__init__.py").write_text("")
    (folder / "mypkg" / "nets.py").write_text(USER_NETS)
    info = folder / "mypkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{nets.ENTRY_POINT_GROUP}]\ntinynet = mypkg.nets:build_chain\n")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        del sys.modules[name]
    for name in [n for n in _USER if n.startswith("mypkg") or n == "tinynet"]:
        del _USER[name]


@pytest.fixture(scope="module")
def images():
    return data.load_task("synthetic_cifar", split_seed=0, n_train=32, n_test=96)


# ---- resolving a user's model ----------------------------------------------------------------------------


def test_import_path_and_entry_point_build_with_options_from_the_signature(user_pkg):
    model = nets.build("mypkg.nets:build_chain", 5, (3, 16, 16), width=4)
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 5)
    info = nets.model_info("mypkg.nets:build_chain")
    assert info.options == {"width": 8, "dropout": 0.5} and info.origin == "import path"
    assert "tinynet" in nets.list_models() and nets.plugin_models() == {"tinynet": "mypkg"}
    assert nets.model_info("tinynet").family == "mypkg"
    tiny = nets.build("tinynet", 3, (1, 8, 8))  # the entry point builds the same network as the callable
    from mypkg.nets import build_chain

    assert str(tiny) == str(build_chain(3, (1, 8, 8)))
    # conv 1->8 (80) + BatchNorm (16) + linear 32->16 (528) + linear 16->3 (51)
    assert sum(p.numel() for p in tiny.parameters()) == 675
    deep = nets.build("mypkg.nets:needs_depth", 3, (1, 8, 8), depth=2)  # a required option, passed on
    assert sum(isinstance(m, torch.nn.Identity) for m in deep) == 2
    assert deep(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


BAD = [
    ("nosuchpkg.nets:build", {}, ["cannot import 'nosuchpkg.nets'", "pip install"]),
    ("mypkg.nets:build_chian", {}, ["no attribute 'build_chian'", "did you mean 'build_chain'"]),
    ("mypkg.nets:wrong_signature", {}, ["(num_classes)", "cannot take (num_classes, in_shape, **options)"]),
    ("mypkg.nets:not_callable", {}, ["not a callable"]),
    ("mypkg.nets:build_chain", {"depth": 2}, ["unknown option(s) depth", "width=8"]),
    ("mypkg.nets:needs_depth", {}, ["depth required"]),
    ("mypkg nets:x", {}, ["not an import path"]),
]


@pytest.mark.parametrize(("name", "options", "fragments"), BAD)
def test_bad_user_models_are_one_line_model_errors(user_pkg, name, options, fragments):
    with pytest.raises(nets.ModelError) as err:
        nets.build(name, 10, (3, 16, 16), **options)
    assert "\n" not in str(err.value)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_a_model_that_cannot_take_the_input_fails_its_probe(user_pkg):
    model = nets.build("mypkg.nets:build_declared", 10, (3, 16, 16))
    with pytest.raises(nets.ModelError, match=r"forward pass on a batch of shape \(2, 3, 8, 8\) failed"):
        nets.probe("mypkg.nets:build_declared", model, 10, (3, 8, 8))


@pytest.mark.slow
def test_console_script_imports_from_the_working_directory_and_lists_plugins(user_pkg, tmp_path):
    """The `seedvar` script's sys.path holds its bin folder, not the working directory: seedvar adds it."""
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    bin_dir.mkdir()
    (work / "mynet_here.py").write_text(
        "from torch import nn\n\ndef build(num_classes, in_shape):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], num_classes))\n"
    )
    script = bin_dir / "seedvar"
    script.write_text("import sys\nfrom seedvar.cli import main\nsys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(user_pkg), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, str(script), "models", "mynet_here:build", "tinynet", "--input-shape", "1,16,16"]
    proc = subprocess.run(
        [*argv, "--classes", "3"], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "mynet_here:build" in proc.stdout and "tinynet" in proc.stdout and "mypkg" in proc.stdout


def test_models_lists_plugins_beside_the_builtins_and_names_those_left_out(user_pkg, capsys):
    assert main(["models", "--input-shape", "1,16,16", "--classes", "3"]) == 0
    out = capsys.readouterr().out
    table, _, left = out.partition("left out")
    assert "tinynet" in table and "1x16x16" in table
    assert all(name in left for name in nets.builtin_models())
    assert "expects 3 input channel(s)" in left and "(1, 30, 25, 25)" in left  # hybridsn says why


# ---- the config hash covers the model's code -------------------------------------------------------------


def user_study(model: str, **sections) -> object:
    raw = {
        "name": "own",
        "models": [model],
        "dataset": {"name": "synthetic_cifar", "n_train": 64, "n_test": 48},
        "train": {"epochs": 1, "batch_size": 32},
        "seeds": {"replicates": 1},
        "test": {"passes": 3, "batch_size": 64},
        "device": "cpu",
        **sections,
    }
    return parse_study(raw)


def test_editing_the_model_source_makes_a_new_config_and_builtin_hashes_stay(tmp_path, monkeypatch):
    (tmp_path / "editnet.py").write_text(USER_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        cfg = expand(user_study("editnet:build_chain"), "cpu")[0]
        assert cfg.model_source_sha256 == nets.source_sha256("editnet:build_chain")
        assert cfg.to_dict()["model_source_sha256"] == cfg.model_source_sha256
        (tmp_path / "editnet.py").write_text(USER_NETS + "\n# tuned\n")
        edited = expand(user_study("editnet:build_chain"), "cpu")[0]
        assert edited.config_hash != cfg.config_hash
        with pytest.raises(nets.ModelError, match="source file changed"):  # planned before the edit
            compute.build_model(cfg, compute.load_data(cfg))
    finally:
        sys.modules.pop("editnet", None)
        _USER.pop("editnet:build_chain", None)
    quick = expand(load_study(ROOT / "studies" / "quick.toml"), "cpu")[0]
    assert "model_source_sha256" not in quick.to_dict()
    assert quick.config_hash == "e303164abd6a0aa7"  # as before own models existed: the quick study resumes


# ---- a sweep of a user's model -----------------------------------------------------------------------------


def test_sweep_of_an_own_model_on_fakedata_logs_its_source_and_repeats_bit_for_bit(
    user_pkg, store_uri, tmp_path
):
    spec = tmp_path / "own.toml"
    spec.write_text(
        textwrap.dedent(
            """
            name = "own"
            device = "cpu"
            models = ["mypkg.nets:build_chain"]
            [model_options."mypkg.nets:build_chain"]
            width = 4
            [dataset]
            name = "torchvision:FakeData"
            size = 120
            image_size = [1, 12, 12]
            num_classes = 3
            [train]
            epochs = 1
            batch_size = 32
            [seeds]
            replicates = 1
            [test]
            passes = 3
            """
        )
    )
    argv = [
        "sweep",
        str(spec),
        "--tracking-uri",
        store_uri,
        "--data-root",
        str(tmp_path / "d"),
        "--no-progress",
    ]
    assert main([*argv, "--set", 'model_options."mypkg.nets:build_chain".dropout=0.25']) == 0
    run = mlflow.MlflowClient(store_uri).search_runs(
        [mlflow.MlflowClient(store_uri).get_experiment_by_name("own").experiment_id],
        schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN),
    )[0]
    params = run.data.params
    assert params[schema.PARAM_MODEL_SOURCE] == nets.source_sha256("mypkg.nets:build_chain")
    assert params["model.dropout"] == "0.25" and params["data.n_test"] == "24"
    assert params[schema.PARAM_TEST_FUSED] == "true" and "5.2 (Dropout)" in params[schema.PARAM_TEST_SPLIT]
    cfg = expand(load_study(spec, {'model_options."mypkg.nets:build_chain".dropout': 0.25}), "cpu")[0]
    assert run.data.tags[schema.TAG_CONFIG_HASH] == cfg.config_hash
    again = compute.fit(cfg, data_root=tmp_path / "d")
    assert weights_sha256(again.model) == run.data.tags[schema.TAG_WEIGHTS]


# ---- fused K passes for any model ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["train", "mc_dropout"])
@pytest.mark.parametrize("builder", ["build_chain", "build_declared"])
def test_a_split_found_or_declared_is_proved_and_equals_full_passes(user_pkg, images, builder, mode):
    torch.manual_seed(0)
    model = nets.build(f"mypkg.nets:{builder}", 10, (3, 32, 32))
    seeds = pass_seeds(3, 4)
    fused = run_passes(model, images.test, mode, seeds, 40)
    full = run_passes(model, images.test, mode, seeds, 40, fused=False)
    assert fused.fused and not full.fused
    assert np.array_equal(fused.preds, full.preds)
    assert len({p.tobytes() for p in fused.preds}) > 1  # the passes really differ


def test_a_wrong_split_is_caught_by_the_first_batch_proof(user_pkg, images, monkeypatch):
    torch.manual_seed(0)
    model = nets.build("mypkg.nets:build_wrong_split", 10, (3, 32, 32))
    seeds = pass_seeds(5, 4)
    full = run_passes(model, images.test, "train", seeds, 40, fused=False).preds
    checked = run_passes(model, images.test, "train", seeds, 40)
    assert not checked.fused and "disproved on the first batch" in checked.split
    assert np.array_equal(checked.preds, full)
    # without the proof the same split gives other predictions: the proof is what keeps them right
    trusted = Split(model.forward_features, model.forward_head, "trusted", True)
    monkeypatch.setattr(evaluate, "find_split", lambda m: trusted)
    assert not np.array_equal(run_passes(model, images.test, "train", seeds, 40).preds, full)


def test_chains_that_are_not_what_forward_does_fall_back_to_full_passes(user_pkg, images):
    torch.manual_seed(0)
    functional = nets.build("mypkg.nets:Functional", 10, (3, 32, 32))
    seeds = pass_seeds(2, 3)
    train = run_passes(functional, images.test, "train", seeds, 40)
    assert not train.fused
    assert np.array_equal(
        train.preds, run_passes(functional, images.test, "train", seeds, 40, fused=False).preds
    )
    assert run_passes(functional, images.test, "mc_dropout", seeds, 40).fused  # F.dropout is off in eval
    reshaping = nets.build("mypkg.nets:Reshaping", 10, (3, 32, 32))
    result = run_passes(reshaping, images.test, "train", seeds, 40)
    assert not result.fused and "failed on the first batch" in result.split


def test_builtin_models_keep_their_declared_split_unproved():
    split = find_split(nets.build("hybridsn", 16, (1, 15, 11, 11)))
    assert isinstance(split, Split) and split.trusted and split.where == "forward_features/forward_head"


# ---- the README's worked example ---------------------------------------------------------------------------


def test_readme_example_runs_from_its_folder(store_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "examples" / "own_model")
    try:
        argv = [
            "sweep",
            "fakedata.toml",
            "--tracking-uri",
            store_uri,
            "--data-root",
            str(tmp_path),
            "--no-progress",
        ]
        assert main([*argv, "--epochs", "1", "--replicates", "1", "--set", "dataset.size=100"]) == 0
        assert load_study("fashionmnist.toml").dataset == "torchvision:FashionMNIST"
        model = nets.build("mynet:build_mynet", 10, (1, 28, 28))
        assert isinstance(find_split(model), Split)
    finally:
        sys.modules.pop("mynet", None)
        _USER.pop("mynet:build_mynet", None)
