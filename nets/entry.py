"""What the registry keeps of a model: its builder, its facts and its option choices; and the one error type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

Builder = Callable[..., nn.Module]


class ModelError(ValueError):
    """A bad model request (name, option, input shape); the message is one line and says what would work."""


@dataclass(frozen=True)
class ModelInfo:
    """What a study spec needs to know about a model without building it."""

    name: str
    family: str
    default_in_shape: tuple[int, ...]
    default_num_classes: int
    description: str
    options: dict[str, object] = field(default_factory=dict, hash=False)
    # Where a model that is not built in comes from: "entry point <dist>" or "import path"; "" when built in.
    origin: str = ""
    # A user's builder with **options takes option names that are not listed in `options`.
    open_options: bool = False


@dataclass(frozen=True)
class Entry:
    builder: Builder
    info: ModelInfo
    choices: dict[str, tuple[object, ...]]
    source: Path | None = None  # the file a user's builder is defined in (hashed into its run configs)
    required: tuple[str, ...] = ()  # a user's keyword parameters without a default


def brief(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__
