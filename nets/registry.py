"""Model registry: studies name a model and its options; this turns the name into a module or a clear error."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

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


@dataclass(frozen=True)
class _Entry:
    builder: Builder
    info: ModelInfo
    choices: dict[str, tuple[object, ...]]


_MODELS: dict[str, _Entry] = {}


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


# Options shared by many models, validated here so every builder gets clean values.
_RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "dropout": (lambda v: _is_real(v) and 0.0 <= v < 1.0, "a float in [0, 1)"),
    "width": (lambda v: _is_real(v) and v > 0, "a positive float"),
    "variant": (
        lambda v: v in (None, "cifar", "imagenet"),
        "'cifar', 'imagenet' or None (auto from input size)",
    ),
}


def register(
    name: str,
    *,
    family: str,
    description: str,
    in_shape: tuple[int, ...] = (3, 32, 32),
    num_classes: int = 10,
    choices: dict[str, tuple[object, ...]] | None = None,
) -> Callable[[Builder], Builder]:
    """Register `builder(num_classes, in_shape, *, option=default, ...)`; its keyword-only defaults are the options."""

    def decorator(builder: Builder) -> Builder:
        params = inspect.signature(builder).parameters.values()
        options = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        unchecked = set(options) - set(choices or {}) - set(_RULES)
        if name in _MODELS or unchecked:
            raise RuntimeError(f"cannot register {name!r}: duplicate name or unvalidated options {unchecked}")
        info = ModelInfo(name, family, tuple(in_shape), num_classes, description, options)
        _MODELS[name] = _Entry(builder, info, dict(choices or {}))
        return builder

    return decorator


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def _entry(name: str) -> _Entry:
    if name not in _MODELS:
        close = difflib.get_close_matches(str(name), _MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelError(f"unknown model {name!r}{hint}; known models: {', '.join(list_models())}")
    return _MODELS[name]


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model (a copy: mutating it does not touch the registry)."""
    info = _entry(name).info
    return dataclasses.replace(info, options=dict(info.options))


def model_options(name: str) -> dict[str, object]:
    """Option names and defaults of a model, for validating study specs before anything is built."""
    return dict(_entry(name).info.options)


def _format_options(options: dict[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items()) or "none"


def _check_option(entry: _Entry, key: str, value: object) -> object:
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
    check, expected = _RULES[key]
    if not check(value):
        raise ModelError(f"{name}: option {key}={value!r} is invalid; expected {expected}")
    return float(value) if _is_real(value) else value


def _check_shape(info: ModelInfo, in_shape: object) -> tuple[int, ...]:
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


def build(name: str, num_classes: int, in_shape: tuple[int, ...], **options: object) -> nn.Module:
    """Build a freshly initialised model; all randomness comes from torch's default generator."""
    entry = _entry(name)
    unknown = sorted(set(options) - set(entry.info.options))
    if unknown:
        raise ModelError(
            f"{name}: unknown option(s) {', '.join(unknown)}; valid options (defaults): "
            f"{_format_options(entry.info.options)}"
        )
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelError(f"{name}: num_classes must be a positive int; got {num_classes!r}")
    shape = _check_shape(entry.info, in_shape)
    checked = {key: _check_option(entry, key, value) for key, value in options.items()}
    try:
        return entry.builder(num_classes, shape, **checked)
    except ModelError as err:
        raise ModelError(f"{name}: {err}") from None


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one eval-mode forward on a batch of 1, counted by FlopCounterMode (MACs = FLOPs/2).

    The input is zeros, so counting does not consume random numbers from the default generator.
    """
    param = next(model.parameters(), None)
    x = torch.zeros(1, *in_shape, device=None if param is None else param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
