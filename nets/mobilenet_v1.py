"""MobileNetV1 (Howard et al. 2017): a 3x3 stem, then depthwise-separable convs (paper Table 1)."""

from __future__ import annotations

from torch import Tensor, nn

from seedvar.nets.blocks import ConvNormAct, Net, cifar_layout, cifar_strides, classifier, make_divisible
from seedvar.nets.registry import register

STEM = 32
# (out channels, stride) of each depthwise-separable block.
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]


class MobileNetV1(Net):
    def __init__(
        self, num_classes: int, width: float = 1.0, dropout: float = 0.0, cifar: bool = False
    ) -> None:
        super().__init__()
        strides = cifar_strides([2] + [s for _, s in BLOCKS], cifar)
        channels = make_divisible(STEM * width)
        layers: list[nn.Module] = [ConvNormAct(3, channels, 3, strides[0])]
        for (out, _), stride in zip(BLOCKS, strides[1:], strict=True):
            out = make_divisible(out * width)
            layers += [
                ConvNormAct(channels, channels, 3, stride, groups=channels),
                ConvNormAct(channels, out, 1),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = classifier(channels, num_classes, dropout)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x).mean((2, 3))


@register(
    "mobilenet_v1",
    family="mobilenet",
    description="MobileNetV1: depthwise-separable conv stack (4.2M at 1000 classes)",
)
def mobilenet_v1(
    num_classes: int,
    in_shape: tuple[int, ...],
    *,
    width: float = 1.0,
    dropout: float = 0.0,
    variant: str | None = None,
) -> MobileNetV1:
    return MobileNetV1(num_classes, width, dropout, cifar_layout(in_shape, variant))
