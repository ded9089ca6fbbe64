"""ShuffleNetV2 (Ma et al. 2018), layer for layer as torchvision's, plus a CIFAR layout."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seedvar.nets.blocks import (
    ConvNormAct,
    Net,
    channel_shuffle,
    cifar_layout,
    classifier,
    make_stages,
    pooled_stem,
)
from seedvar.nets.registry import register

STEM, REPEATS = 24, (4, 8, 4)
# width -> output channels of stages 2-4 and of the final 1x1 conv (paper Table 5).
WIDTHS = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}


class ShuffleV2Block(nn.Module):
    """Stride 1: split channels, transform one half. Stride 2: transform two copies. Then concat + shuffle."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        half, self.stride = out_channels // 2, stride
        if stride > 1:
            self.branch1 = nn.Sequential(
                ConvNormAct(in_channels, in_channels, 3, stride, groups=in_channels, act=None),
                ConvNormAct(in_channels, half, 1),
            )
        self.branch2 = nn.Sequential(
            ConvNormAct(in_channels if stride > 1 else half, half, 1),
            ConvNormAct(half, half, 3, stride, groups=half, act=None),
            ConvNormAct(half, half, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            kept, x = x.chunk(2, dim=1)
        else:
            kept = self.branch1(x)
        return channel_shuffle(torch.cat((kept, self.branch2(x)), 1), 2)


class ShuffleNetV2(Net):
    def __init__(
        self, num_classes: int, width: float = 1.0, dropout: float = 0.0, cifar: bool = False
    ) -> None:
        super().__init__()
        *stages, last = WIDTHS[width]
        self.features = nn.Sequential(
            pooled_stem(3, STEM, cifar),
            *make_stages(ShuffleV2Block, STEM, stages, REPEATS, (2, 2, 2)),
            ConvNormAct(stages[-1], last, 1),
        )
        self.head = classifier(last, num_classes, dropout)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x).mean((2, 3))


@register(
    "shufflenet_v2",
    family="shufflenet",
    description="ShuffleNetV2: channel split + shuffle units (torchvision)",
    choices={"width": tuple(WIDTHS)},
)
def shufflenet_v2(
    num_classes: int,
    in_shape: tuple[int, ...],
    *,
    width: float = 1.0,
    dropout: float = 0.0,
    variant: str | None = None,
) -> ShuffleNetV2:
    return ShuffleNetV2(num_classes, width, dropout, cifar_layout(in_shape, variant))
