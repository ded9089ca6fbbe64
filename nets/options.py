"""Checking a model's options and input shape before anything is built, each error one line that says what
would work."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real

from seedvar.nets.entry import Entry, ModelError, ModelInfo


def is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


# Options shared by many models, validated here so every builder gets clean values.
RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "dropout": (lambda v: is_real(v) and 0.0 <= v < 1.0, "a float in [0, 1)"),
    "width": (lambda v: is_real(v) and v > 0, "a positive float"),
    "variant": (
        lambda v: v in (None, "cifar", "imagenet"),
        "'cifar', 'imagenet' or None (auto from input size)",
    ),
}


def is_count(v: object) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool) and int(v) >= 1


def is_shape(v: object) -> bool:
    return isinstance(v, (tuple, list)) and len(v) > 0 and all(is_count(d) for d in v)


def check_option(entry: Entry, key: str, value: object) -> object:
    """Return the validated value (a choice is returned in its canonical form, e.g. width 1 -> 1.0)."""
    name = entry.info.name
    if key in entry.choices:
        allowed = entry.choices[key]
        for choice in allowed:
            if value == choice and not isinstance(value, bool):
                return choice
        raise ModelError(
            f"{name}: option {key}={value!r} is invalid; choose one of {', '.join(map(repr, allowed))}"
        )
    check, expected = RULES[key]
    if not check(value):
        raise ModelError(f"{name}: option {key}={value!r} is invalid; expected {expected}")
    return float(value) if is_real(value) else value


def check_shape(info: ModelInfo, in_shape: object) -> tuple[int, ...]:
    default = info.default_in_shape
    if not (
        isinstance(in_shape, (tuple, list))
        and len(in_shape) == len(default)
        and all(isinstance(d, Integral) and not isinstance(d, bool) and d >= 1 for d in in_shape)
    ):
        raise ModelError(
            f"{info.name}: in_shape must be {len(default)} positive ints like {default} (no batch axis); got {in_shape!r}"
        )
    shape = tuple(int(d) for d in in_shape)
    if shape[0] != default[0]:
        raise ModelError(
            f"{info.name}: expects {default[0]} input channel(s) in in_shape[0]; got in_shape={shape}"
        )
    return shape


def check_user_shape(name: str, in_shape: object) -> tuple[int, ...]:
    if not is_shape(in_shape):
        raise ModelError(
            f"{name}: in_shape must be positive ints like (3, 32, 32) (no batch axis); got {in_shape!r}"
        )
    return tuple(int(d) for d in in_shape)  # type: ignore[union-attr]
