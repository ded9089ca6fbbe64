"""Model registry: studies name a model and its options; this turns the name into a module or a clear error.

A name is one of the built-in models (each registered by its own file with `register`), a name an
installed package registers, or an import path `package.module:callable` (nets/plugins.py). Options and
shapes are checked in nets/options.py, built models measured in nets/measure.py.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable

from torch import nn

from seedvar.nets.entry import Builder, Entry, ModelError, ModelInfo, brief
from seedvar.nets.options import RULES, check_option, check_shape, check_user_shape
from seedvar.nets.plugins import entry_point_models, file_sha256, import_path, load_entry_point, user_entry

_MODELS: dict[str, Entry] = {}
_USER: dict[str, Entry] = {}  # resolved import paths and entry points, once per process


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
        unchecked = set(options) - set(choices or {}) - set(RULES)
        if name in _MODELS or unchecked:
            raise RuntimeError(f"cannot register {name!r}: duplicate name or unvalidated options {unchecked}")
        info = ModelInfo(name, family, tuple(in_shape), num_classes, description, options)
        _MODELS[name] = Entry(builder, info, dict(choices or {}))
        return builder

    return decorator


def builtin_models() -> list[str]:
    """The models that ship with seedvar, sorted."""
    return sorted(_MODELS)


def plugin_models() -> dict[str, str]:
    """Names registered by installed packages -> their package (a built-in name cannot be taken)."""
    return entry_point_models(frozenset(_MODELS))


def list_models() -> list[str]:
    """Every model name a study may use without an import path: built-in, then installed plugins."""
    return builtin_models() + [n for n in plugin_models() if n not in _MODELS]


def _entry(name: str) -> Entry:
    if name in _MODELS:
        return _MODELS[name]
    if not isinstance(name, str):
        raise ModelError(f"a model name must be a string, got {name!r}")
    if name not in _USER:
        found = load_entry_point(name)
        if found is not None:
            _USER[name] = found
        elif ":" in name:
            _USER[name] = user_entry(name, import_path(name), "import path", name)
        else:
            close = difflib.get_close_matches(name, list_models(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ModelError(
                f"unknown model {name!r}{hint}; known models: {', '.join(list_models())}, "
                "or your own as 'module:function'"
            )
    return _USER[name]


def is_builtin(name: str) -> bool:
    """True for seedvar's own models, whose code is seedvar's (its version and git commit are logged)."""
    return name in _MODELS


def source_sha256(name: str) -> str | None:
    """sha256 of the file defining a user's model, so that editing it makes a new run config; None when built in."""
    entry = _entry(name)
    if name in _MODELS or entry.source is None:
        return None
    return file_sha256(name, entry.source)


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model (a copy: mutating it does not touch the registry)."""
    info = _entry(name).info
    return dataclasses.replace(info, options=dict(info.options))


def model_options(name: str) -> dict[str, object]:
    """Option names and defaults of a model, for validating study specs before anything is built."""
    return dict(_entry(name).info.options)


def check_options(name: str, options: dict[str, object]) -> None:
    """Option names a model accepts (and, for a user's model, the ones it requires), before anything is built."""
    entry = _entry(name)
    info = entry.info
    unknown = [] if info.open_options else sorted(set(options) - set(info.options) - set(entry.required))
    if unknown:
        valid = ", ".join([*entry.required, *(f"{k}={v!r}" for k, v in info.options.items())]) or "none"
        raise ModelError(f"{name}: unknown option(s) {', '.join(unknown)}; valid options (defaults): {valid}")
    missing = [k for k in entry.required if k not in options]
    if missing:
        raise ModelError(f"{name}: option(s) {', '.join(missing)} required (set them in [model_options])")


def build(name: str, num_classes: int, in_shape: tuple[int, ...], **options: object) -> nn.Module:
    """Build a freshly initialised model; all randomness comes from torch's default generator."""
    entry = _entry(name)
    check_options(name, options)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelError(f"{name}: num_classes must be a positive int; got {num_classes!r}")
    if name not in _MODELS:  # a user's model: its options and shapes are its own to check
        shape = check_user_shape(name, in_shape)
        try:
            model = entry.builder(num_classes, shape, **options)
        except ModelError as err:
            raise ModelError(f"{name}: {err}") from None
        except Exception as e:  # a user's builder may raise anything; say so in one line
            raise ModelError(
                f"{name}(num_classes={num_classes}, in_shape={shape}{_call_options(options)}) raised {brief(e)}"
            ) from None
        if not isinstance(model, nn.Module):
            raise ModelError(f"{name} returned a value of type {type(model).__name__}, not a torch.nn.Module")
        return model
    shape = check_shape(entry.info, in_shape)
    checked = {key: check_option(entry, key, value) for key, value in options.items()}
    try:
        return entry.builder(num_classes, shape, **checked)
    except ModelError as err:
        raise ModelError(f"{name}: {err}") from None


def _call_options(options: dict[str, object]) -> str:
    return "".join(f", {k}={v!r}" for k, v in options.items())
