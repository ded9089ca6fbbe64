"""ShuffleNetV1 (Zhang et al. 2018): grouped 1x1 convs + channel shuffle, paper Table 1; init as Megvii's code."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedvar.nets.blocks import (
    ConvNormAct,
    Net,
    channel_shuffle,
    cifar_layout,
    classifier,
    make_divisible,
    make_stages,
    pooled_stem,
)
from seedvar.nets.entry import ModelError
from seedvar.nets.registry import register

STEM, REPEATS = 24, (4, 8, 4)
# groups -> output channels of stages 2-4 at width 1.0; bottlenecks are a quarter of a unit's output.
STAGES = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}


class ShuffleV1Block(nn.Module):
    """1x1 GConv, shuffle, 3x3 depthwise, 1x1 GConv; added to the input (stride 1) or concatenated with a 3x3
    average pool of it (stride 2, so the convs only produce out - in channels), then ReLU (paper Fig. 2)."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, groups: int, first_groups: int
    ) -> None:
        super().__init__()
        mid, self.stride, self.groups = out_channels // 4, stride, groups
        produced = out_channels - in_channels if stride > 1 else out_channels
        self.reduce = ConvNormAct(in_channels, mid, 1, groups=first_groups)
        self.depthwise = ConvNormAct(mid, mid, 3, stride, groups=mid, act=None)
        self.expand = ConvNormAct(mid, produced, 1, groups=groups, act=None)

    def forward(self, x: Tensor) -> Tensor:
        out = self.expand(self.depthwise(channel_shuffle(self.reduce(x), self.groups)))
        if self.stride == 1:
            return F.relu(x + out)
        return F.relu(torch.cat((F.avg_pool2d(x, 3, self.stride, 1), out), 1))


class ShuffleNetV1(Net):
    def __init__(
        self, num_classes: int, groups: int = 3, width: float = 1.0, dropout: float = 0.0, cifar: bool = False
    ) -> None:
        super().__init__()
        stages = [make_divisible(c * width, 4 * groups) for c in STAGES[groups]]  # keeps groups evenly split
        if stages[0] <= STEM:
            raise ModelError(
                f"width={width} leaves stage 2 with {stages[0]} channels, not more than the {STEM}-channel stem"
            )

        def unit(in_channels: int, out_channels: int, stride: int) -> ShuffleV1Block:
            # Stage 2's first 1x1 conv is not grouped: its 24 input channels are too few (paper section 3.3).
            first_groups = 1 if in_channels == STEM else groups
            return ShuffleV1Block(in_channels, out_channels, stride, groups, first_groups)

        self.features = nn.Sequential(
            pooled_stem(3, STEM, cifar), *make_stages(unit, STEM, stages, REPEATS, (2, 2, 2))
        )
        self.head = classifier(stages[-1], num_classes, dropout)
        self._init_megvii()

    def _init_megvii(self) -> None:
        """As Megvii's ShuffleNet-Series: first conv N(0, 0.01), other convs N(0, 1/fan-in channels)."""
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(
                    m.weight, 0, 0.01 if name.startswith("features.0.") else 1.0 / m.weight.shape[1]
                )
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.constant_(m.bias, 1e-4)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x).mean((2, 3))


@register(
    "shufflenet_v1",
    family="shufflenet",
    description="ShuffleNetV1: grouped pointwise convs + channel shuffle (paper Table 1)",
    choices={"groups": tuple(STAGES)},
)
def shufflenet_v1(
    num_classes: int,
    in_shape: tuple[int, ...],
    *,
    groups: int = 3,
    width: float = 1.0,
    dropout: float = 0.0,
    variant: str | None = None,
) -> ShuffleNetV1:
    return ShuffleNetV1(num_classes, groups, width, dropout, cifar_layout(in_shape, variant))
