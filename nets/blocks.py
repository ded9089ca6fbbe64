"""Building blocks shared by the model families, written once so the families differ only in their tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from seedvar.nets.entry import ModelError

Activation = Callable[..., nn.Module]

# MobileNetV3's h-swish x*relu6(x+3)/6 and h-sigmoid relu6(x+3)/6 are exactly torch's Hardswish/Hardsigmoid.
HSwish = nn.Hardswish
HSigmoid = nn.Hardsigmoid


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a scaled channel count to a multiple of `divisor` (the TF/torchvision rule), never losing over 10%."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave channel groups so grouped convs see every group: output channel i = input (i % g) * (c // g) + i // g."""
    batch, channels, *rest = x.shape
    if channels % groups:
        raise ValueError(f"channel_shuffle: {channels} channels do not split into {groups} groups")
    return x.view(batch, groups, channels // groups, *rest).transpose(1, 2).reshape(x.shape)


class Net(nn.Module):
    """Base of every model: forward(x) = forward_head(forward_features(x)).

    forward_features is the deterministic trunk (everything before the first dropout); forward_head is the rest
    and lives in `self.head`, which holds no BatchNorm and no randomness besides dropout. Evaluation relies on this
    to run the trunk once and the head many times with different dropout masks.
    """

    head: nn.Module

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, features: Tensor) -> Tensor:
        return self.head(features)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def classifier(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Final head: Linear, preceded by Dropout only when dropout > 0 (so dropout=0 leaves no Dropout module)."""
    return nn.Sequential(*([nn.Dropout(dropout)] if dropout > 0 else []), nn.Linear(in_features, num_classes))


class ConvNormAct(nn.Sequential):
    """Conv2d (no bias, 'same' padding) + BatchNorm2d + optional activation: the unit all CNN families repeat."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        groups: int = 1,
        dilation: int = 1,
        act: Activation | None = nn.ReLU,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=norm_eps, momentum=norm_momentum),
        ]
        super().__init__(*layers, *([act(inplace=True)] if act is not None else []))


class SqueezeExcitation(nn.Module):
    """SE (Hu et al.): rescale channels by a gate computed from their global average (1x1 convs with bias)."""

    def __init__(
        self, channels: int, squeeze: int, act: Activation = nn.ReLU, scale_act: Activation = nn.Sigmoid
    ) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.act, self.scale_act = act(), scale_act()

    def forward(self, x: Tensor) -> Tensor:
        # mean/amax rather than adaptive pooling: their CUDA backward is deterministic, adaptive pools' is not
        return x * self.scale_act(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class ChannelAttention(nn.Module):
    """CBAM channel gate: a shared MLP over the average- and max-pooled descriptors, summed, then sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, channels // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        gate = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        return x * torch.sigmoid(gate)[:, :, None, None]


class SpatialAttention(nn.Module):
    """CBAM spatial gate: 7x7 conv + BN (as in the reference code) over channel-wise max and mean maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = ConvNormAct(2, 1, kernel_size, act=None, norm_momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Sequential):
    """Convolutional Block Attention Module (Woo et al. 2018): channel gate, then spatial gate."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__(ChannelAttention(channels, reduction), SpatialAttention(kernel_size))


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 bottleneck: 1x1 expand (skipped when hidden == in), kxk depthwise, optional SE, 1x1 linear
    projection; the identity is added when `residual` is set."""

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        act: Activation = nn.ReLU6,
        se: nn.Module | None = None,
        residual: bool = False,
        conv: Callable[..., nn.Module] = ConvNormAct,
    ) -> None:
        super().__init__()
        layers = [conv(in_channels, hidden, 1, act=act)] if hidden != in_channels else []
        layers.append(conv(hidden, hidden, kernel_size, stride, groups=hidden, act=act))
        layers += [se] if se is not None else []
        layers.append(conv(hidden, out_channels, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + out if self.residual else out


# ---- CIFAR vs ImageNet layout -------------------------------------------------------------------------------


def cifar_layout(in_shape: tuple[int, ...], variant: str | None) -> bool:
    """Resolve `variant` (None: CIFAR layout below 64 px) and check the input is big enough for it.

    An ImageNet layout downsamples 32x (five 2x steps); the CIFAR one drops the first two steps (8x), changing
    only the stem and early strides/pooling so both layouts have the same parameters.
    """
    height, width = in_shape[-2:]
    cifar = min(height, width) < 64 if variant is None else variant == "cifar"
    need = 8 if cifar else 32
    if min(height, width) < need:
        hint = "" if cifar else "; use variant='cifar' for small images"
        layout = "cifar" if cifar else "imagenet"
        raise ModelError(f"the {layout} layout needs H and W >= {need}, got in_shape={tuple(in_shape)}{hint}")
    return cifar


def cifar_strides(strides: Sequence[int], cifar: bool) -> list[int]:
    """Strides with the first two stride-2 entries set to 1 under the CIFAR layout: how nets without a max-pool
    (the MobileNets: stem, then blocks) drop two 2x steps."""
    out, dropped = list(strides), 0
    for i, stride in enumerate(out):
        if cifar and stride == 2 and dropped < 2:
            out[i], dropped = 1, dropped + 1
    return out


def pooled_stem(in_channels: int, out_channels: int, cifar: bool, kernel_size: int = 3) -> nn.Sequential:
    """ImageNet: conv/2 + 3x3 max-pool/2 (ResNet, ShuffleNet); CIFAR: a 3x3 stride-1 conv, no pooling."""
    if cifar:
        return nn.Sequential(ConvNormAct(in_channels, out_channels, 3))
    return nn.Sequential(ConvNormAct(in_channels, out_channels, kernel_size, 2), nn.MaxPool2d(3, 2, 1))


def make_stages(
    block: Callable[[int, int, int], nn.Module],
    in_channels: int,
    widths: Sequence[int],
    repeats: Sequence[int],
    strides: Sequence[int],
) -> list[nn.Sequential]:
    """Consecutive stages of `block(in, out, stride)`; in each, only the first block changes width and stride."""
    stages = []
    for width, n, stride in zip(widths, repeats, strides, strict=True):
        blocks = [block(in_channels if i == 0 else width, width, stride if i == 0 else 1) for i in range(n)]
        stages.append(nn.Sequential(*blocks))
        in_channels = width
    return stages


class ResNet(Net):
    """ResNet-18 layout (four stages of 64-512 channels) around a pluggable `block(in, out, stride)`."""

    def __init__(
        self,
        block: Callable[[int, int, int], nn.Module],
        num_classes: int,
        cifar: bool,
        dropout: float = 0.0,
        depths: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
    ) -> None:
        super().__init__()
        self.stem = pooled_stem(3, widths[0], cifar, kernel_size=7)
        strides = [1] + [2] * (len(widths) - 1)
        self.stages = nn.Sequential(*make_stages(block, widths[0], widths, depths, strides))
        self.head = classifier(widths[-1], num_classes, dropout)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x)).mean((2, 3))


def init_mobilenet_(model: nn.Module) -> None:
    """torchvision's MobileNetV2/V3 init: Kaiming-normal (fan_out) convs, unit BN, N(0, 0.01) linears, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)
