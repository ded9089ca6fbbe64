"""Models seedvar does not ship: an import path `package.module:callable` (importable from the working
directory or the environment) or a name an installed package registers under the entry-point group
`seedvar.models`. A user's callable takes `(num_classes, in_shape, **options)` and returns an `nn.Module`;
its keyword parameters with defaults are its options, and the file that defines it is hashed into its
run configs.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import inspect
import os
import sys
import warnings
from pathlib import Path

from seedvar.nets.entry import Entry, ModelError, ModelInfo, brief
from seedvar.nets.options import is_count, is_shape

ENTRY_POINT_GROUP = "seedvar.models"
# Shape and classes a user model is listed with when its signature gives no defaults for them.
USER_DEFAULT_IN_SHAPE, USER_DEFAULT_NUM_CLASSES = (3, 32, 32), 10


def entry_point_models(builtin: set[str] | frozenset[str]) -> dict[str, str]:
    """Names registered by installed packages under the `seedvar.models` entry-point group -> their package.

    A plugin cannot take a built-in name: such an entry point is skipped with a warning.
    """
    found: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in builtin:
            warnings.warn(
                f"entry point {ep.name!r} ({ep.value}) ignored: a built-in model has that name", stacklevel=2
            )
            continue
        found.setdefault(ep.name, ep.dist.name if ep.dist is not None else "?")
    return dict(sorted(found.items()))


def load_entry_point(name: str) -> Entry | None:
    """A plugin's model by its registered name, or None when no installed package registers it."""
    plugins = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name not in plugins:
        return None
    ep = plugins[name]
    dist = ep.dist.name if ep.dist is not None else "?"
    try:
        builder = ep.load()
    except Exception as e:  # a broken plugin is the user's to fix; say which and why
        raise ModelError(
            f"model {name!r} from package {dist} (entry point {ep.value}) cannot be loaded: {brief(e)}"
        ) from None
    return user_entry(name, builder, f"entry point of {dist}", ep.value)


def import_path(path: str) -> object:
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
        raise ModelError(f"model {path!r}: importing {module!r} failed: {brief(e)}") from None
    for i, part in enumerate(parts):
        if not hasattr(obj, part):
            owner = ".".join([module, *parts[:i]]) if i else module
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ModelError(f"model {path!r}: {owner!r} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
    return obj


def user_entry(name: str, builder: object, origin: str, target: str) -> Entry:
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
    classes = defaults[0] if defaults and is_count(defaults[0]) else USER_DEFAULT_NUM_CLASSES
    shape = defaults[1] if len(defaults) > 1 and is_shape(defaults[1]) else USER_DEFAULT_IN_SHAPE
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
    return Entry(builder, info, {}, source_file(builder), tuple(required))  # type: ignore[arg-type]


def source_file(builder: object) -> Path | None:
    """The file that defines a builder (a class, function or partial), or None when it has none."""
    target = inspect.unwrap(getattr(builder, "func", builder))  # type: ignore[arg-type]
    try:
        return Path(inspect.getfile(target)).resolve()
    except TypeError:
        module = sys.modules.get(getattr(target, "__module__", "") or "")
        file = getattr(module, "__file__", None)
        return Path(file).resolve() if file else None


def file_sha256(name: str, source: Path) -> str:
    """sha256 of the file defining a user's model: editing it makes a new run config. Only the builder's own
    file is hashed, not code it imports from other files."""
    try:
        return hashlib.sha256(source.read_bytes()).hexdigest()
    except OSError as e:
        raise ModelError(f"model {name!r}: cannot read its source file {source} ({brief(e)})") from None
