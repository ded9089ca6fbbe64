"""Model zoo tests: reference parameter counts, torchvision parity, the trunk/head split, seeding and errors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import seedvar.nets as nets
from seedvar.nets.blocks import channel_shuffle

IMAGENET, CIFAR = (3, 224, 224), (3, 32, 32)
IMAGE_MODELS = [n for n in nets.list_models() if n != "hybridsn"]
REFERENCE_DROPOUT = {
    "mobilenet_v2": [0.2],
    "mobilenet_v3_large": [0.2],
    "mobilenet_v3_small": [0.2],
    "hybridsn": [0.4, 0.4],
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Batches of 2 gain nothing from intra-op threads, while OpenMP threads competing with other processes on a
    busy 2-core machine can turn a 0.1 s step into seconds. Restored afterwards for the other test files."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def default_model(name: str, **options: object) -> tuple[nn.Module, tuple[int, ...], int]:
    info = nets.model_info(name)
    return (
        nets.build(name, info.default_num_classes, info.default_in_shape, **options),
        info.default_in_shape,
        (info.default_num_classes),
    )


# ---- parameter counts ------------------------------------------------------------------------------------------

EXACT_COUNTS = [
    ("mobilenet_v1", 1000, IMAGENET, {}, 4_231_976),
    ("mobilenet_v2", 1000, IMAGENET, {}, 3_504_872),
    ("mobilenet_v2", 10, CIFAR, {}, 2_236_682),
    ("mobilenet_v3_large", 1000, IMAGENET, {}, 5_483_032),
    ("mobilenet_v3_small", 1000, IMAGENET, {}, 2_542_856),
    ("shufflenet_v2", 1000, IMAGENET, {"width": 0.5}, 1_366_792),
    ("shufflenet_v2", 1000, IMAGENET, {"width": 1.0}, 2_278_604),
    ("shufflenet_v2", 1000, IMAGENET, {"width": 1.5}, 3_503_624),
    ("shufflenet_v2", 1000, IMAGENET, {"width": 2.0}, 7_393_996),
    ("shufflenet_v2", 10, CIFAR, {}, 1_263_854),
    ("senet18", 10, CIFAR, {}, 11_260_354),
    ("cbam_resnet18", 10, CIFAR, {}, 11_263_842),
    ("cbam_resnet18", 1000, IMAGENET, {}, 11_779_392),
    ("hybridsn", 16, (1, 30, 25, 25), {}, 5_122_176),
    ("hybridsn", 16, (1, 15, 25, 25), {}, 4_845_696),
    ("hybridsn", 9, (1, 15, 25, 25), {}, 4_844_793),
]


@pytest.mark.parametrize(("name", "classes", "shape", "options", "expected"), EXACT_COUNTS)
def test_param_count_exact(name, classes, shape, options, expected):
    assert nets.count_params(nets.build(name, classes, shape, **options)) == expected


@pytest.mark.parametrize(("groups", "expected"), [(3, 1.87e6), (8, 2.43e6)])
def test_shufflenet_v1_param_count_matches_paper(groups, expected):
    model = nets.build("shufflenet_v1", 1000, IMAGENET, groups=groups)
    assert nets.count_params(model) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_shufflenet_v1_other_groups_build(groups):
    model = nets.build("shufflenet_v1", 10, CIFAR, groups=groups)
    assert model(torch.randn(2, *CIFAR)).shape == (2, 10)


@pytest.mark.parametrize("name", [n for n in IMAGE_MODELS if n not in ("senet18", "cbam_resnet18")])
def test_cifar_layout_has_imagenet_parameters(name):
    cifar, imagenet = (nets.build(name, 10, CIFAR, variant=v) for v in ("cifar", "imagenet"))
    assert nets.count_params(cifar) == nets.count_params(imagenet)


def test_mobilenet_v1_macs_match_paper():
    model = nets.build("mobilenet_v1", 1000, IMAGENET)
    assert nets.count_macs(model, IMAGENET) == pytest.approx(569e6, rel=0.01)


def test_count_macs_keeps_mode_and_rng():
    model = nets.build("mobilenet_v3_small", 10, CIFAR)
    state = torch.random.get_rng_state()
    assert nets.count_macs(model, CIFAR) > 0
    assert model.training and torch.equal(state, torch.random.get_rng_state())


# ---- parity with torchvision ----------------------------------------------------------------------------------


def load_in_order(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy `state` into `model` entry by entry: names differ, but registration order, kinds and shapes match."""
    ours = model.state_dict()
    assert len(ours) == len(state)
    mapped = {}
    for (key, value), (ref_key, ref_value) in zip(ours.items(), state.items(), strict=True):
        assert key.rsplit(".", 1)[-1] == ref_key.rsplit(".", 1)[-1] and value.shape == ref_value.shape, (
            key,
            ref_key,
        )
        mapped[key] = ref_value
    model.load_state_dict(mapped)


TORCHVISION = [
    ("mobilenet_v2", {}, torchvision.models.mobilenet_v2),
    ("mobilenet_v3_large", {}, torchvision.models.mobilenet_v3_large),
    ("mobilenet_v3_small", {}, torchvision.models.mobilenet_v3_small),
    ("shufflenet_v2", {"width": 0.5}, torchvision.models.shufflenet_v2_x0_5),
    ("shufflenet_v2", {"width": 1.0}, torchvision.models.shufflenet_v2_x1_0),
    ("shufflenet_v2", {"width": 1.5}, torchvision.models.shufflenet_v2_x1_5),
    ("shufflenet_v2", {"width": 2.0}, torchvision.models.shufflenet_v2_x2_0),
]


@pytest.mark.parametrize(("name", "options", "reference"), TORCHVISION)
def test_torchvision_parity(name, options, reference):
    torch.manual_seed(0)
    ref = reference(weights=None, num_classes=10).eval()
    for m in ref.modules():  # non-trivial BN statistics and O(1) logits, so a wrong BN eps shows (~1e-3)
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
        elif isinstance(m, nn.Linear):
            m.weight.data.normal_(0, m.in_features**-0.5)
            m.bias.data.normal_(0, 0.1)
    model = nets.build(name, 10, (3, 64, 64), **options).eval()  # 64 px: ImageNet layout, fast
    load_in_order(model, ref.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v3_small"])
def test_mobilenet_v3_batchnorm_settings(name):
    bns = [m for m in nets.build(name, 10, CIFAR).modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)


# ---- every model: forward/backward, trunk/head split, dropout, seeding ----------------------------------------


@pytest.mark.parametrize("name", nets.list_models())
def test_forward_backward(name):
    model, shape, classes = default_model(name)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, classes)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", nets.list_models())
def test_forward_is_head_of_features(name):
    model, shape, _ = default_model(name)
    x = torch.randn(2, *shape)
    model.train()
    assert torch.equal(model.forward_features(x), model.forward_features(x))  # trunk is deterministic
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_head(model.forward_features(x)))


@pytest.mark.parametrize("name", nets.list_models())
def test_head_leaves_its_input_alone(name):
    # K test passes reuse one trunk output: a head that wrote into it would corrupt the next pass
    model, shape, _ = default_model(name, dropout=0.3)
    model.train()
    with torch.no_grad():
        features = model.forward_features(torch.randn(2, *shape))
        kept = features.clone()
        model.forward_head(features)
    assert torch.equal(features, kept)


def dropouts(module: nn.Module) -> list[float]:
    return [m.p for m in module.modules() if isinstance(m, nn.Dropout)]


@pytest.mark.parametrize("name", nets.list_models())
def test_dropout_lives_in_head(name):
    reference = REFERENCE_DROPOUT.get(name, [])
    model, _, _ = default_model(name)
    assert nets.model_options(name)["dropout"] == (reference[0] if reference else 0.0)
    assert dropouts(model) == dropouts(model.head) == reference
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.head.modules())

    model, _, _ = default_model(name, dropout=0.3)
    assert dropouts(model) == dropouts(model.head) == [0.3] * max(1, len(reference))
    if name != "hybridsn":  # one Dropout right before the final classifier
        assert isinstance(model.head[-2], nn.Dropout) and isinstance(model.head[-1], nn.Linear)
    assert dropouts(default_model(name, dropout=0.0)[0]) == []


@pytest.mark.parametrize("name", nets.list_models())
def test_same_seed_same_weights(name):
    def weights(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return default_model(name)[0].state_dict()

    first, again, other = weights(1), weights(1), weights(2)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


# ---- layouts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_variant_chosen_by_input_size(name):
    auto_small, auto_big = nets.build(name, 10, CIFAR), nets.build(name, 10, IMAGENET)
    assert repr(auto_small) == repr(nets.build(name, 10, IMAGENET, variant="cifar"))
    assert repr(auto_big) == repr(nets.build(name, 10, CIFAR, variant="imagenet"))
    assert repr(auto_small) != repr(auto_big)
    assert auto_small(torch.randn(2, *CIFAR)).shape == (2, 10)


def test_layouts_downsample_8x_and_32x():
    cifar, imagenet = nets.build("mobilenet_v2", 10, CIFAR), nets.build("mobilenet_v2", 10, IMAGENET).eval()
    assert cifar.features(torch.randn(2, *CIFAR)).shape[-2:] == (4, 4)
    with torch.no_grad():
        assert imagenet.features(torch.randn(1, *IMAGENET)).shape[-2:] == (7, 7)


@pytest.mark.parametrize("shape", [(1, 30, 25, 25), (1, 15, 25, 25), (1, 30, 19, 19), (1, 13, 9, 9)])
def test_hybridsn_input_shapes(shape):
    assert nets.build("hybridsn", 16, shape)(torch.randn(2, *shape)).shape == (2, 16)


# ---- blocks ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("groups", "channels"), [(2, 8), (3, 12), (4, 8), (8, 24)])
def test_channel_shuffle_permutation(groups, channels):
    x = torch.randn(2, channels, 3, 3)
    out = channel_shuffle(x, groups)
    expected = [(i % groups) * (channels // groups) + i // groups for i in range(channels)]
    assert torch.equal(out, x[:, expected])
    assert torch.equal(channel_shuffle(out, channels // groups), x)


# ---- registry and errors ---------------------------------------------------------------------------------------


def test_registry_api():
    assert nets.list_models() == sorted(
        ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v1"]
        + ["shufflenet_v2", "senet18", "cbam_resnet18", "hybridsn"]
    )
    info = nets.model_info("shufflenet_v1")
    assert (info.default_in_shape, info.default_num_classes) == (CIFAR, 10)
    assert info.options == {"groups": 3, "width": 1.0, "dropout": 0.0, "variant": None}
    assert nets.model_info("hybridsn").default_in_shape == (1, 30, 25, 25)
    assert nets.model_info("hybridsn").default_num_classes == 16
    assert nets.model_options("mobilenet_v2") == {"width": 1.0, "dropout": 0.2, "variant": None}
    nets.model_options("mobilenet_v2")["dropout"] = 0.9  # a copy: the registry is unchanged
    assert nets.model_info("mobilenet_v2").options["dropout"] == 0.2
    with pytest.raises(AttributeError):
        info.name = "x"  # type: ignore[misc]


ERRORS = [
    ("resnet50", 10, CIFAR, {}, ["unknown model", "mobilenet_v2", "hybridsn"]),
    ("mobilenet_v2", 10, CIFAR, {"widht": 2.0}, ["unknown option", "widht", "width=1.0", "variant=None"]),
    ("mobilenet_v2", 10, CIFAR, {"width": -1}, ["width=-1", "positive"]),
    ("mobilenet_v2", 10, CIFAR, {"dropout": 1.0}, ["dropout=1.0", "[0, 1)"]),
    ("mobilenet_v2", 10, CIFAR, {"variant": "tiny"}, ["variant='tiny'", "'cifar'"]),
    ("shufflenet_v1", 10, CIFAR, {"groups": 5}, ["groups=5", "1, 2, 3, 4, 8"]),
    ("shufflenet_v2", 10, CIFAR, {"width": 0.75}, ["width=0.75", "0.5, 1.0, 1.5, 2.0"]),
    ("mobilenet_v2", 0, CIFAR, {}, ["num_classes"]),
    ("mobilenet_v2", 10, (1, 32, 32), {}, ["3 input channel"]),
    ("mobilenet_v2", 10, (32, 32), {}, ["3 positive ints"]),
    ("mobilenet_v2", 10, (3, 4, 4), {}, [">= 8"]),
    ("mobilenet_v2", 10, CIFAR[:1] + (16, 16), {"variant": "imagenet"}, [">= 32", "variant='cifar'"]),
    ("hybridsn", 16, (1, 12, 25, 25), {}, [">= 13 bands"]),
    ("hybridsn", 16, (1, 30, 8, 8), {}, ["9x9"]),
    ("hybridsn", 16, (3, 30, 25, 25), {}, ["1 input channel"]),
]


@pytest.mark.parametrize(("name", "classes", "shape", "options", "fragments"), ERRORS)
def test_errors_are_one_line_and_actionable(name, classes, shape, options, fragments):
    with pytest.raises(nets.ModelError) as err:
        nets.build(name, classes, shape, **options)
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, ValueError)
    for fragment in fragments:
        assert fragment in message


def test_unknown_model_everywhere():
    for call in (nets.model_info, nets.model_options):
        with pytest.raises(nets.ModelError, match="known models"):
            call("vgg16")


def test_nets_does_not_import_data_or_study():
    for path in Path(nets.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("data", "study") for n in names), path
