"""Model registry: studies name a model and its options; this turns the name into a module or a clear error.

A name is one of the built-in models, a name registered by an installed package under the entry-point
group `seedvar.models`, or an import path `package.module:callable` (importable from the working
directory or the environment). A user's callable takes `(num_classes, in_shape, **options)` and returns
an `nn.Module`; its keyword parameters with defaults are its options.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.metadata
import inspect
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Builder = Callable[..., nn.Module]

ENTRY_POINT_GROUP = "seedvar.models"
# Shape and classes a user model is listed with when its signature gives no defaults for them.
USER_DEFAULT_IN_SHAPE, USER_DEFAULT_NUM_CLASSES = (3, 32, 32), 10


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
class _Entry:
    builder: Builder
    info: ModelInfo
    choices: dict[str, tuple[object, ...]]
    source: Path | None = None  # the file a user's builder is defined in (hashed into its run configs)
    required: tuple[str, ...] = ()  # a user's keyword parameters without a default


_MODELS: dict[str, _Entry] = {}
_USER: dict[str, _Entry] = {}  # resolved import paths and entry points, once per process


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


def builtin_models() -> list[str]:
    """The models that ship with seedvar, sorted."""
    return sorted(_MODELS)


def plugin_models() -> dict[str, str]:
    """Names registered by installed packages under the `seedvar.models` entry-point group -> their package.

    A plugin cannot take a built-in name: such an entry point is skipped with a warning.
    """
    found: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _MODELS:
            warnings.warn(
                f"entry point {ep.name!r} ({ep.value}) ignored: a built-in model has that name", stacklevel=2
            )
            continue
        found.setdefault(ep.name, ep.dist.name if ep.dist is not None else "?")
    return dict(sorted(found.items()))


def list_models() -> list[str]:
    """Every model name a study may use without an import path: built-in, then installed plugins."""
    return builtin_models() + [n for n in plugin_models() if n not in _MODELS]


def _entry(name: str) -> _Entry:
    if name in _MODELS:
        return _MODELS[name]
    if not isinstance(name, str):
        raise ModelError(f"a model name must be a string, got {name!r}")
    if name not in _USER:
        plugins = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
        if name in plugins:
            ep = plugins[name]
            dist = ep.dist.name if ep.dist is not None else "?"
            try:
                builder = ep.load()
            except Exception as e:  # a broken plugin is the user's to fix; say which and why
                raise ModelError(
                    f"model {name!r} from package {dist} (entry point {ep.value}) cannot be loaded: {_brief(e)}"
                ) from None
            _USER[name] = _user_entry(name, builder, f"entry point of {dist}", ep.value)
        elif ":" in name:
            _USER[name] = _user_entry(name, _import_path(name), "import path", name)
        else:
            close = difflib.get_close_matches(name, list_models(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ModelError(
                f"unknown model {name!r}{hint}; known models: {', '.join(list_models())}, "
                "or your own as 'module:function'"
            )
    return _USER[name]


def _brief(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _import_path(path: str) -> object:
    """`package.module:attr.attr` -> the object, with the working directory importable (as `python -m` has it)."""
    module, _, attr = path.partition(":")
    parts = attr.split(".")
    if not module or not all(p.isidentifier() for p in [*module.split("."), *parts]):
        raise ModelError(f"model {path!r} is not an import path like 'mypkg.nets:build_mynet'")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: object = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or module == e.name or module.startswith(f"{e.name}."):
            raise ModelError(
                f"model {path!r}: cannot import {module!r}: run seedvar from the folder holding "
                f"{module.split('.')[0]}, or pip install it"
            ) from None
        raise ModelError(
            f"model {path!r}: importing {module!r} failed: it imports {e.name!r}, which is not installed"
        ) from None
    except Exception as e:  # a syntax or runtime error in the user's module
        raise ModelError(f"model {path!r}: importing {module!r} failed: {_brief(e)}") from None
    for i, part in enumerate(parts):
        if not hasattr(obj, part):
            owner = ".".join([module, *parts[:i]]) if i else module
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ModelError(f"model {path!r}: {owner!r} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
    return obj


def _user_entry(name: str, builder: object, origin: str, target: str) -> _Entry:
    """Check a user's builder against the contract `(num_classes, in_shape, **options) -> nn.Module`."""
    expected = (
        f"define it as def {target.rpartition(':')[2].rpartition('.')[2]}(num_classes, in_shape, **options)"
    )
    if not callable(builder):
        raise ModelError(
            f"model {name!r}: {target} is a {type(builder).__name__}, not a callable; {expected}"
        )
    try:
        sig = inspect.signature(builder)
    except (TypeError, ValueError):  # a callable without introspectable signature: trust it
        sig = None
    options: dict[str, object] = {}
    required: list[str] = []
    open_options = sig is None
    defaults: list[object] = []
    if sig is not None:
        params = list(sig.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        rest = [p for p in positional[2:] if p.kind is not p.POSITIONAL_ONLY]
        rest += [p for p in params if p.kind is p.KEYWORD_ONLY]
        required = [p.name for p in rest if p.default is p.empty]
        options = {p.name: p.default for p in rest if p.default is not p.empty}
        open_options = any(p.kind is p.VAR_KEYWORD for p in params)
        defaults = [p.default for p in positional[:2]]
        try:
            sig.bind(USER_DEFAULT_NUM_CLASSES, USER_DEFAULT_IN_SHAPE, **dict.fromkeys(required))
        except TypeError:
            raise ModelError(
                f"model {name!r}: {target}{sig} cannot take (num_classes, in_shape, **options); {expected}"
            ) from None
    classes = defaults[0] if defaults and _is_count(defaults[0]) else USER_DEFAULT_NUM_CLASSES
    shape = defaults[1] if len(defaults) > 1 and _is_shape(defaults[1]) else USER_DEFAULT_IN_SHAPE
    doc = inspect.cleandoc(getattr(builder, "__doc__", None) or "").splitlines()  # its own, not inherited
    info = ModelInfo(
        name,
        origin.rpartition(" ")[2] if origin.startswith("entry point") else "user",
        tuple(int(d) for d in shape),
        int(classes),
        doc[0] if doc else target,
        options,
        origin=origin,
        open_options=open_options,
    )
    return _Entry(builder, info, {}, _source_file(builder), tuple(required))  # type: ignore[arg-type]


def _is_count(v: object) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool) and int(v) >= 1


def _is_shape(v: object) -> bool:
    return isinstance(v, (tuple, list)) and len(v) > 0 and all(_is_count(d) for d in v)


def _source_file(builder: object) -> Path | None:
    """The file that defines a builder (a class, function or partial), or None when it has none."""
    target = inspect.unwrap(getattr(builder, "func", builder))  # type: ignore[arg-type]
    try:
        return Path(inspect.getfile(target)).resolve()
    except TypeError:
        module = sys.modules.get(getattr(target, "__module__", "") or "")
        file = getattr(module, "__file__", None)
        return Path(file).resolve() if file else None


def is_builtin(name: str) -> bool:
    """True for seedvar's own models, whose code is seedvar's (its version and git commit are logged)."""
    return name in _MODELS


def source_sha256(name: str) -> str | None:
    """sha256 of the file defining a user's model, so that editing it makes a new run config; None when built in.

    Only the builder's own file is hashed: code it imports from other files is not covered.
    """
    entry = _entry(name)
    if name in _MODELS or entry.source is None:
        return None
    try:
        return hashlib.sha256(entry.source.read_bytes()).hexdigest()
    except OSError as e:
        raise ModelError(
            f"model {name!r}: cannot read its source file {entry.source} ({_brief(e)})"
        ) from None


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model (a copy: mutating it does not touch the registry)."""
    info = _entry(name).info
    return dataclasses.replace(info, options=dict(info.options))


def model_options(name: str) -> dict[str, object]:
    """Option names and defaults of a model, for validating study specs before anything is built."""
    return dict(_entry(name).info.options)


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


def _check_user_shape(name: str, in_shape: object) -> tuple[int, ...]:
    if not _is_shape(in_shape):
        raise ModelError(
            f"{name}: in_shape must be positive ints like (3, 32, 32) (no batch axis); got {in_shape!r}"
        )
    return tuple(int(d) for d in in_shape)  # type: ignore[union-attr]


def build(name: str, num_classes: int, in_shape: tuple[int, ...], **options: object) -> nn.Module:
    """Build a freshly initialised model; all randomness comes from torch's default generator."""
    entry = _entry(name)
    check_options(name, options)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelError(f"{name}: num_classes must be a positive int; got {num_classes!r}")
    if name not in _MODELS:  # a user's model: its options and shapes are its own to check
        shape = _check_user_shape(name, in_shape)
        try:
            model = entry.builder(num_classes, shape, **options)
        except ModelError as err:
            raise ModelError(f"{name}: {err}") from None
        except Exception as e:  # a user's builder may raise anything; say so in one line
            raise ModelError(
                f"{name}(num_classes={num_classes}, in_shape={shape}{_call_options(options)}) raised {_brief(e)}"
            ) from None
        if not isinstance(model, nn.Module):
            raise ModelError(f"{name} returned a value of type {type(model).__name__}, not a torch.nn.Module")
        return model
    shape = _check_shape(entry.info, in_shape)
    checked = {key: _check_option(entry, key, value) for key, value in options.items()}
    try:
        return entry.builder(num_classes, shape, **checked)
    except ModelError as err:
        raise ModelError(f"{name}: {err}") from None


def _call_options(options: dict[str, object]) -> str:
    return "".join(f", {k}={v!r}" for k, v in options.items())


def probe(name: str, model: nn.Module, num_classes: int, in_shape: tuple[int, ...]) -> None:
    """One eval-mode forward on zeros, so a model that cannot take this input fails before a sweep starts.

    Eval mode draws no dropout masks and leaves BatchNorm statistics alone, and the input is zeros: the
    default generator and the model are as they were.
    """
    param = next(model.parameters(), None)
    x = torch.zeros(2, *in_shape, device=None if param is None else param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # shape mismatches surface here as RuntimeError from some layer
        raise ModelError(
            f"{name}: a forward pass on a batch of shape {tuple(x.shape)} failed: {_brief(e)}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(
            f"{name}: a batch of shape {tuple(x.shape)} gives output {got}; expected logits of shape (2, {num_classes})"
        )


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
