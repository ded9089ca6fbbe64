"""torchvision datasets and image folders: decoded once (cached by content), split by the split seed,
normalized with their own training statistics, served like CIFAR-10. Offline: FakeData and generated PNGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import seedvar.data as data
from seedvar.cli import main
from seedvar.data import DataError, load_task, vision
from seedvar.data import decoded as dv
from seedvar.record import schema

FAKE = {"size": 150, "image_size": [1, 12, 10], "num_classes": 3}


@pytest.fixture(autouse=True)
def _fresh_memo():
    """Each test sees the disk cache, not what an earlier test decoded in this process."""
    dv._MEMO.clear()
    yield
    dv._MEMO.clear()


def all_x(loader: data.BatchLoader) -> torch.Tensor:
    return torch.cat([x for x, _ in loader.batches(64)])


def raw(loader) -> np.ndarray:
    """The uint8 images back from the normalized test batches."""
    x = all_x(loader)
    return torch.round(x / loader.inv_std + loader.mean).to(torch.uint8).numpy()


def test_fakedata_is_decoded_once_split_by_seed_and_normalized_by_its_training_images(tmp_path, monkeypatch):
    task = load_task("torchvision:FakeData", split_seed=1, root=tmp_path, **FAKE)
    assert task.in_shape == (1, 12, 10) and task.num_classes == 3 and task.kind == "image"
    assert len(task.train) == 120 and len(task.test) == 30
    assert sorted(np.concatenate([task.test_ids, np.setdiff1d(np.arange(150), task.test_ids)])) == list(
        range(150)
    )
    x = all_x(task.train)  # no augment generator: the clean training images
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-2
    assert task.info["mean"] != "0.4914"  # its own statistics, not CIFAR-10's
    cache = list((tmp_path / "decoded").glob("*.npz"))
    assert len(cache) == 1

    # a second process: from the disk cache, without decoding again, the same task
    dv._MEMO.clear()
    monkeypatch.setattr(dv, "decode", lambda *a, **k: pytest.fail("decoded twice"))
    again = load_task("torchvision:FakeData", split_seed=1, root=tmp_path, **FAKE)
    assert np.array_equal(again.test_ids, task.test_ids) and torch.equal(again.test.images, task.test.images)
    other = load_task("torchvision:FakeData", split_seed=2, root=tmp_path, **FAKE)
    assert not np.array_equal(other.test_ids, task.test_ids)

    # a damaged cache file is rebuilt, not trusted
    monkeypatch.undo()
    dv._MEMO.clear()
    cache[0].write_bytes(cache[0].read_bytes()[:100])
    rebuilt = load_task("torchvision:FakeData", split_seed=1, root=tmp_path, **FAKE)
    assert torch.equal(rebuilt.test.images, task.test.images)


def test_sizes_draw_stratified_subsamples_and_augmentation_is_crop_and_flip(tmp_path):
    task = load_task("torchvision:FakeData", split_seed=0, root=tmp_path, train_size=60, test_size=15, **FAKE)
    assert len(task.train) == 60 and len(task.test) == 15
    gen = torch.Generator().manual_seed(0)
    a = torch.cat([x for x, _ in task.train.batches(64, augment=gen)])
    assert a.shape == (60, 1, 12, 10) and not torch.equal(a, all_x(task.train))
    with pytest.raises(DataError, match="train_size=500 exceeds the 120 images"):
        load_task("torchvision:FakeData", split_seed=0, root=tmp_path, train_size=500, **FAKE)


def write_folder(root, sizes=None, mode="RGB") -> dict[str, list[np.ndarray]]:
    """class folders of PNGs with known pixels: class k is bright in channel k."""
    rng = np.random.default_rng(0)
    pixels: dict[str, list[np.ndarray]] = {}
    for k, name in enumerate(["ant", "bee", "cat"]):
        (root / name).mkdir(parents=True)
        pixels[name] = []
        for i in range(8):
            h, w = (sizes or {}).get((name, i), (9, 7))
            img = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
            img[..., k] += 100
            Image.fromarray(img).convert(mode).save(root / name / f"{i}.png")
            pixels[name].append(np.asarray(Image.open(root / name / f"{i}.png")))
    return pixels


def test_image_folder_of_pngs_keeps_pixels_classes_and_ids(tmp_path):
    pixels = write_folder(tmp_path / "imgs")
    task = load_task(
        "image_folder", split_seed=4, root=tmp_path / "d", path=str(tmp_path / "imgs"), test_fraction=0.25
    )
    assert task.class_names == ["ant", "bee", "cat"] and task.in_shape == (3, 9, 7)
    assert len(task.test) == 6 and sorted(np.bincount(task.test.labels.numpy())) == [2, 2, 2]
    flat = [p for name in task.class_names for p in pixels[name]]  # ImageFolder's order: class, then file
    got = raw(task.test)
    for row, sample in enumerate(task.test_ids):
        assert np.array_equal(got[row].transpose(1, 2, 0), flat[sample])
    gray = load_task("image_folder", split_seed=4, root=tmp_path / "d", path=str(tmp_path / "imgs"), mode="L")
    assert gray.in_shape == (1, 9, 7)


def test_image_folder_with_a_test_folder_and_sizes_that_differ(tmp_path):
    write_folder(tmp_path / "train")
    write_folder(tmp_path / "test", sizes={("bee", 3): (12, 7)})
    opts = {"path": str(tmp_path / "train"), "test_path": str(tmp_path / "test")}
    with pytest.raises(DataError, match=r"sample 11 is 12x7, sample 0 is 9x7: set resize"):
        load_task("image_folder", split_seed=0, root=tmp_path / "d", **opts)
    task = load_task("image_folder", split_seed=0, root=tmp_path / "d", resize=[8, 8], **opts)
    assert task.in_shape == (3, 8, 8) and len(task.train) == 24 and len(task.test) == 24
    assert np.array_equal(task.test_ids, np.arange(24))


def test_editing_an_image_changes_the_fingerprint(tmp_path):
    write_folder(tmp_path / "imgs")
    a = load_task("image_folder", split_seed=0, root=tmp_path / "d", path=str(tmp_path / "imgs"))
    Image.fromarray(np.zeros((9, 7, 3), np.uint8)).save(tmp_path / "imgs" / "ant" / "0.png")
    b = load_task("image_folder", split_seed=0, root=tmp_path / "d", path=str(tmp_path / "imgs"))
    assert a.info["fingerprint"] != b.info["fingerprint"]
    assert len(list((tmp_path / "d" / "decoded").glob("*.npz"))) == 2


def test_torchvision_errors_are_one_line(tmp_path):
    cases = [
        ({"name": "torchvision:FashionMnist"}, "did you mean 'torchvision:FashionMNIST'"),
        ({"name": "torchvision:CocoDetection"}, "does not yield (image, class index)"),
        ({"name": "torchvision:MNIST"}, "run with --download"),
        ({"name": "torchvision:EMNIST"}, "needs option(s) split"),
        ({"name": "fashionmnist"}, "did you mean 'torchvision:FashionMNIST'"),
        ({"name": "torchvision:FakeData", "mode": "CMYK", **FAKE}, "option mode"),
        ({"name": "torchvision:FakeData", "resize": [4], **FAKE}, "option resize"),
        ({"name": "torchvision:FakeData", "test_fraction": 1.5, **FAKE}, "test_fraction"),
        ({"name": "torchvision:FakeData", "colour": 1}, "unknown option 'colour'"),
    ]
    for options, phrase in cases:
        opts = dict(options)
        with pytest.raises(DataError) as err:
            load_task(opts.pop("name"), split_seed=0, root=tmp_path, **opts)
        assert phrase in str(err.value) and "\n" not in str(err.value), (options, str(err.value))


def test_options_come_from_the_constructor_and_how_it_splits():
    assert data.dataset_options("torchvision:FakeData")["image_size"] == (3, 224, 224)
    assert "test_fraction" in data.dataset_options("torchvision:FakeData")
    assert vision.vision_class("FashionMNIST").splits == "train"
    assert vision.vision_class("SVHN").splits == "split" and "train_split" in data.dataset_options(
        "torchvision:SVHN"
    )
    assert vision.vision_class("EMNIST").required == ("split",)  # its **kwargs lead to MNIST's train flag
    assert vision.vision_class("EMNIST").splits == "train"


def test_seedvar_datasets_lists_builtin_torchvision_and_image_folder(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in (
        "cifar10",
        "indian_pines",
        "image_folder",
        "torchvision:FashionMNIST",
        "torchvision:FakeData",
    ):
        assert name in out
    assert "torchvision:CocoDetection" not in out and "torchvision:ImageFolder" not in out
    assert "split=<required>" in out  # EMNIST


def test_a_run_trains_and_tests_on_an_image_folder(tmp_path):
    from seedvar.engine import compute
    from seedvar.plan import expand, parse_study

    write_folder(tmp_path / "imgs")
    spec = parse_study(
        {
            "name": "folder",
            "device": "cpu",
            "models": ["mobilenet_v2"],
            "model_options": {"mobilenet_v2": {"width": 0.25}},
            "dataset": {"name": "image_folder", "path": str(tmp_path / "imgs"), "resize": [32, 32]},
            "train": {"epochs": 1, "batch_size": 8},
            "seeds": {"replicates": 1},
            "test": {"passes": 2},
        }
    )
    result = compute.run(expand(spec, "cpu")[0], data_root=tmp_path / "d")
    assert result.predictions.class_names == ["ant", "bee", "cat"]
    assert result.predictions.passes["train"].shape == (2, 5) and result.data_info["n_train"] == 19
    assert schema.test_params(result) == {"test.fused": "true", "test.split": "forward_features/forward_head"}
