"""HybridSN (Roy et al. 2019) for hyperspectral patches: 3D convs over (bands, window, window), one 2D conv, MLP."""

from __future__ import annotations

from torch import Tensor, nn

from seedvar.nets.blocks import Net
from seedvar.nets.entry import ModelError
from seedvar.nets.registry import register

CONV3D = [(8, 7), (16, 5), (32, 3)]  # (out channels, spectral kernel); every 3D kernel is 3x3 in space
CONV2D, FC = 64, (256, 128)
MIN_BANDS = 1 + sum(k - 1 for _, k in CONV3D)  # 13
MIN_WINDOW = 1 + 2 * (len(CONV3D) + 1)  # 9: four 3x3 valid convs


class HybridSN(Net):
    def __init__(self, num_classes: int, in_shape: tuple[int, ...], dropout: float = 0.4) -> None:
        super().__init__()
        _, bands, height, width = in_shape
        if bands < MIN_BANDS or min(height, width) < MIN_WINDOW:
            raise ModelError(
                f"needs >= {MIN_BANDS} bands and a >= {MIN_WINDOW}x{MIN_WINDOW} window, got in_shape={tuple(in_shape)}"
            )
        layers: list[nn.Module] = []
        channels = 1
        for out, k in CONV3D:
            layers += [nn.Conv3d(channels, out, (k, 3, 3)), nn.ReLU(inplace=True)]
            channels, bands, height, width = out, bands - k + 1, height - 2, width - 2
        self.conv3d = nn.Sequential(*layers)
        self.conv2d = nn.Sequential(nn.Conv2d(channels * bands, CONV2D, 3), nn.ReLU(inplace=True))
        flat = CONV2D * (height - 2) * (width - 2)
        self.fc1 = nn.Sequential(nn.Flatten(), nn.Linear(flat, FC[0]), nn.ReLU(inplace=True))
        drop = [nn.Dropout(dropout)] if dropout > 0 else []  # the paper drops 40% after fc1 and after fc2
        drop2 = [nn.Dropout(dropout)] if dropout > 0 else []
        self.head = nn.Sequential(
            *drop, nn.Linear(*FC), nn.ReLU(inplace=True), *drop2, nn.Linear(FC[1], num_classes)
        )

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.conv3d(x)
        return self.fc1(self.conv2d(x.flatten(1, 2)))  # spectral axis folded into channels


@register(
    "hybridsn",
    family="hybridsn",
    description="HybridSN: 3D-2D CNN for hyperspectral image patches (Roy et al. 2019)",
    in_shape=(1, 30, 25, 25),
    num_classes=16,
)
def hybridsn(num_classes: int, in_shape: tuple[int, ...], *, dropout: float = 0.4) -> HybridSN:
    return HybridSN(num_classes, in_shape, dropout)
