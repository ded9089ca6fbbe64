"""Study specs: a TOML file plus command-line overrides, validated into frozen dataclasses.

Every error names the file and the key, because a typo in a spec should cost seconds, not a sweep.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedvar.errors import UserError
from seedvar.plan.ready import locate
from seedvar.plan.seeding import SOURCES, VARIABLE_SOURCES
from seedvar.results import EVAL, MODES, REFERENCE
from seedvar.stats import STD_CHOICES

if TYPE_CHECKING:
    from seedvar.stats.twostage import Target


@dataclass(frozen=True)
class TrainSpec:
    """How each model is trained."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    precision: str = "fp32"
    # CPU threads per run. Part of the config because it changes CPU results: reductions split by thread
    # count round differently, so the same seeds give other weights with 1 and 2 threads (measured).
    threads: int = 1


@dataclass(frozen=True)
class SeedSpec:
    """Which seeds a sweep draws: `vary = "all"`, or a list of training sources varied one at a time,
    which always runs `all` too (first), as the reference each source's variance is measured against."""

    base: int = 0
    replicates: int = 5
    vary: tuple[str, ...] = (REFERENCE,)
    # sources pinned to one seed in every run, e.g. {split = 345}: the HybridSN code's fixed pixel split
    fixed: dict[str, int] = field(default_factory=dict)
    # Two-stage sweeps (seedvar.stats.twostage): `replicates` is then the pilot; the data decide the rest.
    target_ci: float = 0.0  # half-width of each condition's 95% interval, accuracy points (0: off)
    target_diff: float = 0.0  # smallest difference between conditions to tell apart, points (0: off)
    target_mode: str = EVAL  # whose per-model accuracy the targets are about
    max_replicates: int = 100  # no condition gets more replicates than this
    # what --target-diff sizes each pair at: "upper80", the 80% upper confidence bound of the pilot std
    # (Browne 1995), or "pilot", the pilot std itself
    target_std: str = "upper80"


@dataclass(frozen=True)
class TestSpec:
    """How each trained model is tested: modes, stochastic passes K, batch size."""

    modes: tuple[str, ...] = MODES
    passes: int = 10
    eval_passes: int = 2
    batch_size: int = 512


@dataclass(frozen=True)
class Study:
    """A validated study: what to train, how, with which seeds, and how to test it."""

    name: str
    source: str
    dataset: str
    dataset_options: dict[str, Any]
    models: tuple[str, ...]
    # Dataset options given as a list of values in the spec: each value is a condition of its own.
    dataset_axes: tuple[str, ...] = ()
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    train: TrainSpec = TrainSpec()
    seeds: SeedSpec = SeedSpec()
    test: TestSpec = TestSpec()
    # The spec's [execution] table as written: where runs run is the engine's business (it resolves the
    # table with the command line's flags into one Execution) and never part of a run's config.
    execution: dict[str, Any] = field(default_factory=dict)
    deterministic: tuple[bool, ...] = (True,)
    # Implementation twins: [train] settings given as a list (`threads = [1, 2]`), each value trained on
    # the same seeds. `train` holds the first value; the runs of the others are their twins.
    twins: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    device: str = "auto"
    download: bool = False
    description: str = ""
    runs_on: str = ""  # where the study is meant to run and how long it takes, e.g. "2 CPU cores, ~4 min"
    # Published numbers its report holds against each condition's seeds (`claims = {hybridsn = 99.75}`):
    # the lab's "was that a lucky seed?", asked by every report of the study without --claim.
    claims: tuple[tuple[str, float], ...] = ()

    @property
    def target(self) -> Target:
        """The two-stage target of this study (inactive unless target_ci or target_diff is set)."""
        from seedvar.stats.twostage import Target  # scipy: loaded when a sweep needs it, not to read a spec

        sd = self.seeds
        return Target(
            sd.target_ci, sd.target_diff, sd.target_mode, sd.replicates, sd.max_replicates, sd.target_std
        )


# [train] settings that keep every seed and change only the implementation (how the same arithmetic is
# computed): a list of values trains twins of the same seeds, compared apart from the seeds' spread.
TWIN_SETTINGS = ("threads", "precision")

_SECTIONS = {"train": TrainSpec, "seeds": SeedSpec, "test": TestSpec}
_TOP = {
    "name",
    "description",
    "runs_on",
    "claims",
    "device",
    "deterministic",
    "models",
    "model_options",
    "dataset",
    "execution",
} | set(_SECTIONS)
DEVICES = ("auto", "cpu", "cuda")  # where a study trains (`device`, --device)
_CHOICES = {
    "train.optimizer": ("adam", "sgd"),
    "train.schedule": ("none", "cosine"),
    "train.precision": ("fp32", "bf16"),
    "device": DEVICES,
}


def load_study(path: str | Path, overrides: dict[str, Any] | None = None) -> Study:
    """Read a TOML spec (a path, or a ready study's name), apply overrides (dotted keys such as
    `train.epochs`), validate."""
    path = locate(path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the study spec ({exc})") from None
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    return parse_study(raw, source=str(path))


def parse_value(text: str) -> Any:
    """A `--set KEY=VALUE` value: TOML syntax where it parses (numbers, booleans, lists), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_study(raw: dict[str, Any], source: str = "<spec>") -> Study:
    """Validate a spec dict; every error names the source file and the offending key."""

    def fail(key: str, msg: str) -> UserError:
        return UserError(f"{source}: {key}: {msg}")

    unknown = sorted(set(raw) - _TOP)
    if unknown:
        raise fail(unknown[0], f"unknown key; valid top-level keys are {', '.join(sorted(_TOP))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "required: the study name (it becomes the MLflow experiment)")

    dataset = raw.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("name"), str):
        raise fail(
            "dataset.name", 'required: a [dataset] table with name = "indian_pines" or another dataset'
        )
    dataset_options = {k: v for k, v in dataset.items() if k not in ("name", "download")}
    download = dataset.get("download", False)
    if not isinstance(download, bool):
        raise fail("dataset.download", f"must be true or false, got {download!r}")
    defaults = _check_dataset(dataset["name"], dataset_options, fail)
    import seedvar.data as data

    # A list compares its values as conditions, except for an option whose own value is a sequence
    # (a default that is one, such as FakeData's image_size, or a known one such as resize).
    axes = tuple(
        k
        for k, v in dataset_options.items()
        if isinstance(v, list)
        and not isinstance(defaults[k], (tuple, list))
        and k not in data.SEQUENCE_OPTIONS
    )
    for key in axes:
        values = dataset_options[key]
        scalar = all(isinstance(v, (str, int, float, bool)) for v in values)
        if not values or not scalar or len({repr(v) for v in values}) != len(values):
            raise fail(
                f"dataset.{key}",
                f"a list of values compares them as conditions and must hold distinct plain values, got {values!r}",
            )
    # every value a sweep would refuse, refused now: a dry run reads no data but judges the same options
    for values in itertools.product(*(dataset_options[k] for k in axes)):
        chosen = dict(zip(axes, values, strict=True))
        try:
            data.check_options(dataset["name"], {**dataset_options, **chosen})
        except data.DataError as exc:
            label = ", ".join(f"{k}={v}" for k, v in chosen.items())
            raise fail(f"dataset ({label})" if label else "dataset", str(exc)) from None

    models = raw.get("models")
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise fail("models", 'required: a list of model names, e.g. models = ["hybridsn"]')
    if len(set(models)) != len(models):
        raise fail("models", "lists a model twice")
    model_options = raw.get("model_options", {})
    if not isinstance(model_options, dict) or not all(isinstance(v, dict) for v in model_options.values()):
        raise fail("model_options", "must be tables such as [model_options.hybridsn] dropout = 0.5")
    for key in model_options:
        if key not in models:
            raise fail(f"model_options.{key}", f"names a model that is not in models ({', '.join(models)})")
    for model in models:
        _check_model(model, model_options.get(model, {}), fail)

    sections = {}
    twins: dict[str, tuple[Any, ...]] = {}
    for key, cls in _SECTIONS.items():
        table = raw.get(key, {})
        if not isinstance(table, dict):
            raise fail(key, f"must be a table [{key}]")
        if key == "train":
            table, twins = _twin_values(table, fail)
        sections[key] = _build_section(cls, key, table, fail)
    _check_values(sections, fail)
    for setting, values in twins.items():  # every twin's value judged as a spec with that value would be
        for value in values[1:]:
            _check_values(
                {**sections, "train": dataclasses.replace(sections["train"], **{setting: value})}, fail
            )

    det = raw.get("deterministic", True)
    if det == "both":
        deterministic: tuple[bool, ...] = (True, False)
    elif isinstance(det, bool):
        deterministic = (det,)
    else:
        raise fail("deterministic", f'must be true, false or "both", got {det!r}')
    device = raw.get("device", "auto")
    if device not in _CHOICES["device"]:
        raise fail("device", f"must be one of {', '.join(_CHOICES['device'])}, got {device!r}")
    text = {}
    for key in ("description", "runs_on"):
        text[key] = raw.get(key, "")
        if not isinstance(text[key], str):
            raise fail(key, "must be a string")
    execution = raw.get("execution", {})
    if not isinstance(execution, dict):
        raise fail("execution", "must be a table [execution]")
    claims = raw.get("claims", {})
    if not isinstance(claims, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in claims.values()
    ):
        raise fail(
            "claims",
            f"must be a table of condition = number, e.g. claims = {{hybridsn = 96.89}}; got {claims!r}",
        )
    return Study(
        name=name.strip(),
        source=source,
        dataset=dataset["name"],
        dataset_options=dataset_options,
        dataset_axes=axes,
        models=tuple(models),
        model_options={m: dict(model_options.get(m, {})) for m in models},
        deterministic=deterministic,
        device=device,
        download=download,
        execution=dict(execution),
        twins=tuple(twins.items()),
        claims=tuple((str(k), float(v)) for k, v in claims.items()),
        **text,
        **sections,
    )


def _twin_values(table: dict[str, Any], fail: Any) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    """The [train] table with each twin setting's list replaced by its first value, and the lists: a
    list of distinct values, each typed as the setting is (`threads = [1, 2]`)."""
    table, twins = dict(table), {}
    hints = typing.get_type_hints(TrainSpec)
    for key in TWIN_SETTINGS:
        values = table.get(key)
        if not isinstance(values, list):
            continue
        where = f"train.{key}"
        if not values or len({repr(v) for v in values}) != len(values):
            raise fail(
                where,
                f"a list of values trains twins of the same seeds and must hold distinct values, got {values!r}",
            )
        twins[key] = tuple(_coerce(v, hints[key], where, fail) for v in values)
        table[key] = twins[key][0]
    return table, twins


def typed_table(cls: type, section: str, table: dict[str, Any], source: str) -> Any:
    """A dataclass from one TOML table, every key and type checked; errors name the file and the key."""

    def fail(key: str, msg: str) -> UserError:
        return UserError(f"{source}: {key}: {msg}")

    return _build_section(cls, section, table, fail)


def _build_section(cls: type, section: str, table: dict[str, Any], fail: Any) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        where = f"{section}.{key}"
        if key not in names:
            raise fail(where, f"unknown key; valid keys in [{section}] are {', '.join(sorted(names))}")
        values[key] = _coerce(value, hints[key], where, fail)
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str, fail: Any) -> Any:
    if type(hint) is types.UnionType:  # `int | None`: None is the default ("automatic"), never written
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif hint == dict[str, int]:
        ok = isinstance(value, dict) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value.values()
        )
    else:  # tuple[str, ...]: a string or a list of strings
        value = [value] if isinstance(value, str) else value
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    if not ok:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
            hint,
            "a table of integers such as {split = 345}"
            if hint == dict[str, int]
            else "a string or a list of strings",
        )
        raise fail(where, f"must be {kind}, got {value!r}")
    return value


def _check_values(s: dict[str, Any], fail: Any) -> None:
    train, seeds, test = s["train"], s["seeds"], s["test"]
    for key in ("epochs", "batch_size", "threads"):
        if getattr(train, key) < 1:
            raise fail(f"train.{key}", f"must be at least 1, got {getattr(train, key)}")
    if not train.lr > 0:
        raise fail("train.lr", f"must be positive, got {train.lr}")
    if train.weight_decay < 0 or not 0 <= train.momentum < 1:
        key = "train.weight_decay" if train.weight_decay < 0 else "train.momentum"
        raise fail(key, "must be >= 0 (momentum: in [0, 1))")
    for key in ("optimizer", "schedule", "precision"):
        allowed = _CHOICES[f"train.{key}"]
        if getattr(train, key) not in allowed:
            raise fail(f"train.{key}", f"must be one of {', '.join(allowed)}, got {getattr(train, key)!r}")
    if seeds.replicates < 1:
        raise fail("seeds.replicates", f"must be at least 1, got {seeds.replicates}")
    if not 0 <= seeds.base < 2**63:
        raise fail("seeds.base", f"must be a non-negative integer, got {seeds.base}")
    bad = [v for v in seeds.vary if v not in (REFERENCE, *VARIABLE_SOURCES)]
    if bad or not seeds.vary or len(set(seeds.vary)) != len(seeds.vary):
        raise fail(
            "seeds.vary",
            f'must be "{REFERENCE}" or a list of distinct sources from {", ".join(VARIABLE_SOURCES)} (a list also '
            f'runs "{REFERENCE}" as the reference), got {list(seeds.vary)}',
        )
    # one source at a time always runs the `all` reference too, first
    s["seeds"] = dataclasses.replace(seeds, vary=(REFERENCE, *(v for v in seeds.vary if v != REFERENCE)))
    for source, seed in seeds.fixed.items():
        if source not in SOURCES or not 0 <= seed < 2**32:
            raise fail(
                f"seeds.fixed.{source}",
                f"must name a source ({', '.join(SOURCES)}) with a seed in [0, 2**32)",
            )
        if source in seeds.vary:
            raise fail(f"seeds.fixed.{source}", "is also in seeds.vary: a source is either varied or fixed")
    for key in ("target_ci", "target_diff"):
        if getattr(seeds, key) < 0:
            raise fail(
                f"seeds.{key}", f"must be >= 0 accuracy points (0 turns it off), got {getattr(seeds, key)}"
            )
    if seeds.target_std not in STD_CHOICES:
        raise fail("seeds.target_std", f"must be one of {', '.join(STD_CHOICES)}, got {seeds.target_std!r}")
    if seeds.max_replicates < 1:
        raise fail("seeds.max_replicates", f"must be at least 1, got {seeds.max_replicates}")
    if seeds.target_ci > 0 or seeds.target_diff > 0:
        if seeds.replicates < 3:
            raise fail(
                "seeds.replicates",
                f"is the pilot of a two-stage sweep (--target-ci / --target-diff) and needs at least 3, got "
                f"{seeds.replicates}: a seed std from fewer has too few degrees of freedom",
            )
        if seeds.max_replicates < seeds.replicates:
            raise fail(
                "seeds.max_replicates",
                f"({seeds.max_replicates}) is below the pilot's {seeds.replicates} replicates: raise it",
            )
        if seeds.target_mode not in test.modes:
            raise fail(
                "seeds.target_mode", f"{seeds.target_mode!r} is not among the tested modes {list(test.modes)}"
            )
        if tuple(seeds.vary) != (REFERENCE,):
            raise fail(
                "seeds.vary",
                f'a two-stage sweep draws ordinary seeds: use vary = "{REFERENCE}" with --target-ci / --target-diff',
            )
    bad_modes = [m for m in test.modes if m not in MODES]
    if bad_modes or not test.modes or len(set(test.modes)) != len(test.modes):
        raise fail("test.modes", f"must be distinct modes from {', '.join(MODES)}, got {list(test.modes)}")
    stochastic = [m for m in test.modes if m != EVAL]
    if test.passes < 1 and stochastic:
        raise fail("test.passes", f"must be at least 1 for the stochastic modes {', '.join(stochastic)}")
    if test.eval_passes < 1:
        raise fail("test.eval_passes", f"must be at least 1, got {test.eval_passes}")
    if test.batch_size < 1:
        raise fail("test.batch_size", f"must be at least 1, got {test.batch_size}")


def _check_dataset(name: str, options: dict[str, Any], fail: Any) -> dict[str, object]:
    """The dataset's option defaults, after checking that every given option is one of them."""
    import seedvar.data as data

    try:
        defaults = data.dataset_options(name)
    except data.DataError as exc:
        raise fail("dataset.name", str(exc)) from None
    _check_options("dataset", name, options, defaults, fail)
    return defaults


def _check_model(name: str, options: dict[str, Any], fail: Any) -> None:
    """Resolve the model (a user's import path is imported here) and check its option names."""
    import seedvar.nets as nets

    try:
        info = nets.model_info(name)
    except nets.ModelError as exc:
        raise fail("models", str(exc)) from None
    if nets.is_builtin(name):
        _check_options(f"model_options.{name}", name, options, info.options, fail)
    try:
        nets.check_options(name, options)
    except nets.ModelError as exc:
        raise fail(f"model_options.{name}", str(exc)) from None


def _check_options(
    where: str, name: str, options: dict[str, Any], defaults: dict[str, Any], fail: Any
) -> None:
    for key in options:
        if key not in defaults:
            valid = ", ".join(sorted(defaults)) or "none"
            raise fail(f"{where}.{key}", f"unknown option for {name}; valid options: {valid}")


def _split_key(key: str) -> list[str]:
    """`a.b.c` -> [a, b, c], with TOML's quoting for parts that hold dots: `model_options."pkg.mod:fn".width`."""
    parts, part, quoted = [], "", False
    for ch in key:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(part)
            part = ""
        else:
            part += ch
    if quoted:
        raise UserError(f"--set {key}: unbalanced quotes in the key")
    return [*parts, part]


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set one dotted key (`train.lr`, `model_options."pkg.mod:fn".width`) in a raw spec dict."""
    parts = _split_key(key)
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {key}: {part} is not a table in the spec")
    node[parts[-1]] = value
