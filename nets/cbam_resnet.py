"""CBAM-ResNet18 (Woo et al. 2018): torchvision's BasicBlock with CBAM (reduction 16) before the addition."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from seedvar.nets.blocks import CBAM, ConvNormAct, ResNet, SpatialAttention, cifar_layout
from seedvar.nets.registry import register


class CBAMBasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels, 3, stride)
        self.conv2 = ConvNormAct(out_channels, out_channels, 3, act=None)
        self.cbam = CBAM(out_channels, reduction)
        self.shortcut = (
            ConvNormAct(in_channels, out_channels, 1, stride, act=None)
            if stride != 1 or in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.cbam(self.conv2(self.conv1(x))) + self.shortcut(x))


def init_cbam_(model: nn.Module) -> None:
    """As the CBAM reference code (Jongchan/attention-module): Kaiming-normal convs (fan_out) and classifier,
    unit BN except the spatial gates' BN scale at 0 (gates start at 0.5), zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, SpatialAttention):
            nn.init.zeros_(m.conv[1].weight)
    nn.init.kaiming_normal_(model.head[-1].weight)


@register(
    "cbam_resnet18", family="resnet", description="ResNet18 BasicBlocks with CBAM attention, reduction 16"
)
def cbam_resnet18(
    num_classes: int, in_shape: tuple[int, ...], *, dropout: float = 0.0, variant: str | None = None
) -> ResNet:
    model = ResNet(CBAMBasicBlock, num_classes, cifar_layout(in_shape, variant), dropout)
    init_cbam_(model)
    return model
