"""SENet18 (Hu et al. 2018) as in kuangliu/pytorch-cifar: ResNet18 of pre-activation blocks with SE, reduction 16."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from seedvar.nets.blocks import ResNet, SqueezeExcitation, cifar_layout
from seedvar.nets.registry import register


class PreActSEBlock(nn.Module):
    """BN-ReLU-conv twice, SE gate on the result, plus the shortcut (a 1x1 conv of the pre-activated input when
    the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, reduction: int = 16) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.se = SqueezeExcitation(out_channels, out_channels // reduction)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        pre = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return self.se(out) + shortcut


@register(
    "senet18", family="resnet", description="SE-ResNet18, pre-activation blocks, SE reduction 16 (kuangliu)"
)
def senet18(
    num_classes: int, in_shape: tuple[int, ...], *, dropout: float = 0.0, variant: str | None = None
) -> ResNet:
    return ResNet(PreActSEBlock, num_classes, cifar_layout(in_shape, variant), dropout)
