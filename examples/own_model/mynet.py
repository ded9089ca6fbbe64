"""My own small CNN for 1x28x28 images (FashionMNIST-shaped). seedvar builds it by its import path,
`mynet:build_mynet`, when run from this folder."""

from torch import nn


def build_mynet(
    num_classes: int = 10,
    in_shape: tuple[int, ...] = (1, 28, 28),
    *,
    width: int = 16,
    dropout: float = 0.5,
) -> nn.Module:
    """Two conv blocks and a dropout head, as a plain nn.Sequential (seedvar finds the trunk/head split)."""
    channels, height, wide = in_shape
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * (height // 4) * (wide // 4), 128),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(128, num_classes),
    )
