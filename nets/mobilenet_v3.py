"""MobileNetV3 small/large (Howard et al. 2019), layer for layer as torchvision's, plus a CIFAR layout."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from seedvar.nets.blocks import (
    ConvNormAct,
    HSigmoid,
    HSwish,
    InvertedResidual,
    Net,
    SqueezeExcitation,
    cifar_layout,
    cifar_strides,
    classifier,
    init_mobilenet_,
    make_divisible,
)
from seedvar.nets.registry import register

# kernel, expanded, out, SE, activation (RE: ReLU, HS: h-swish), stride: paper Tables 1 and 2.
LARGE = [
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
]
SMALL = [
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
]
CONFIGS = {"large": (LARGE, 1280), "small": (SMALL, 1024)}  # blocks, width of the penultimate Linear
STEM = 16
ACTS = {"RE": nn.ReLU, "HS": HSwish}


class MobileNetV3(Net):
    def __init__(
        self, size: str, num_classes: int, width: float = 1.0, dropout: float = 0.2, cifar: bool = False
    ) -> None:
        super().__init__()
        blocks, last = CONFIGS[size]
        conv = partial(ConvNormAct, norm_eps=1e-3, norm_momentum=0.01)
        strides = cifar_strides([2] + [row[-1] for row in blocks], cifar)
        channels = make_divisible(STEM * width)
        layers: list[nn.Module] = [conv(3, channels, 3, strides[0], act=HSwish)]
        for (kernel, exp, out, use_se, act, s), stride in zip(blocks, strides[1:], strict=True):
            exp, out = make_divisible(exp * width), make_divisible(out * width)
            se = SqueezeExcitation(exp, make_divisible(exp // 4), scale_act=HSigmoid) if use_se else None
            layers.append(
                InvertedResidual(
                    channels,
                    exp,
                    out,
                    kernel_size=kernel,
                    stride=stride,
                    act=ACTS[act],
                    se=se,
                    residual=s == 1 and channels == out,
                    conv=conv,
                )
            )
            channels = out
        layers.append(conv(channels, 6 * channels, 1, act=HSwish))
        self.features = nn.Sequential(*layers)
        last = make_divisible(last * width)
        # torchvision's classifier[:2]; it precedes the dropout, so it belongs to the trunk.
        self.neck = nn.Sequential(nn.Linear(6 * channels, last), HSwish(inplace=True))
        self.head = classifier(last, num_classes, dropout)
        init_mobilenet_(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.neck(self.features(x).mean((2, 3)))


@register(
    "mobilenet_v3_small",
    family="mobilenet",
    description="MobileNetV3-Small: SE + h-swish bottlenecks (torchvision)",
)
def mobilenet_v3_small(
    num_classes: int,
    in_shape: tuple[int, ...],
    *,
    width: float = 1.0,
    dropout: float = 0.2,
    variant: str | None = None,
) -> MobileNetV3:
    return MobileNetV3("small", num_classes, width, dropout, cifar_layout(in_shape, variant))


@register(
    "mobilenet_v3_large",
    family="mobilenet",
    description="MobileNetV3-Large: SE + h-swish bottlenecks (torchvision)",
)
def mobilenet_v3_large(
    num_classes: int,
    in_shape: tuple[int, ...],
    *,
    width: float = 1.0,
    dropout: float = 0.2,
    variant: str | None = None,
) -> MobileNetV3:
    return MobileNetV3("large", num_classes, width, dropout, cifar_layout(in_shape, variant))
