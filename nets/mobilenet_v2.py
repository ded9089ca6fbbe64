"""MobileNetV2 (Sandler et al. 2018), layer for layer as torchvision's, plus a CIFAR layout."""

from __future__ import annotations

from torch import Tensor, nn

from seedvar.nets.blocks import (
    ConvNormAct,
    InvertedResidual,
    Net,
    cifar_layout,
    cifar_strides,
    classifier,
    init_mobilenet_,
    make_divisible,
)
from seedvar.nets.registry import register

STEM, LAST = 32, 1280
# t (expansion), c (out channels), n (repeats), s (stride of the first repeat): paper Table 2.
SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class MobileNetV2(Net):
    def __init__(
        self, num_classes: int, width: float = 1.0, dropout: float = 0.2, cifar: bool = False
    ) -> None:
        super().__init__()
        rows = [(t, c, 1 if i else s) for t, c, n, s in SETTING for i in range(n)]  # one row per block
        strides = cifar_strides([2] + [s for _, _, s in rows], cifar)
        channels, last = make_divisible(STEM * width), make_divisible(LAST * max(1.0, width))
        layers: list[nn.Module] = [ConvNormAct(3, channels, 3, strides[0], act=nn.ReLU6)]
        for (t, c, s), stride in zip(rows, strides[1:], strict=True):
            out = make_divisible(c * width)
            residual = s == 1 and channels == out  # from the table, so the CIFAR layout keeps the same blocks
            layers.append(
                InvertedResidual(channels, round(channels * t), out, stride=stride, residual=residual)
            )
            channels = out
        layers.append(ConvNormAct(channels, last, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.head = classifier(last, num_classes, dropout)
        init_mobilenet_(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x).mean((2, 3))


@register(
    "mobilenet_v2",
    family="mobilenet",
    description="MobileNetV2: inverted residuals, linear bottlenecks (torchvision)",
)
def mobilenet_v2(
    num_classes: int,
    in_shape: tuple[int, ...],
    *,
    width: float = 1.0,
    dropout: float = 0.2,
    variant: str | None = None,
) -> MobileNetV2:
    return MobileNetV2(num_classes, width, dropout, cifar_layout(in_shape, variant))
