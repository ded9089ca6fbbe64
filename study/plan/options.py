"""The sweep's options, each declared once: its name, type, choices, the spec field or execution setting it
sets, and its help. The command's flags (`seedvar sweep --replicates ...`), `seedvar.sweep`'s keywords and
their routing onto the spec are built from this table; tests/test_spec.py holds the spec's fields and
choices to it. Defaults are never written here: each help text reads its default from the code that holds
it (the spec's dataclasses, `Execution`), so a changed default changes the help too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seedvar.plan.execution import DEFAULT_RETRY_SECONDS, ENV_RETRY, Execution
from seedvar.plan.spec import DEVICES, Study
from seedvar.stats import ALPHA, LEVEL, POWER, STD_CHOICES, UPPER

DETERMINISTIC_CHOICES = {
    "true": True,
    "false": False,
    "both": "both",
}  # the flag's words -> the spec's values


def _word(value: Any) -> Any:
    """A default as the spec and the flags spell it: true / false for booleans, numbers kept for formats."""
    return str(value).lower() if isinstance(value, bool) else value


def _comma_list(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


@dataclass(frozen=True)
class SweepOption:
    """One sweep option. `field` is the dotted spec field it sets, or "" for an execution setting (a field of
    `Execution`, named like the option). `help` may say {default} and {choices}, filled from the code."""

    name: str  # the keyword of seedvar.sweep; the flag is --name with dashes
    type: Callable[[str], Any]  # what the flag's text is parsed with (bool: a switch)
    help: str
    field: str = ""
    choices: tuple[str, ...] | None = (
        None  # None: any value (the executor's are the engine's: the CLI asks it)
    )
    metavar: str | None = None
    convert: Callable[[Any], Any] | None = None  # the flag's parsed value -> the keyword's value

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default(self) -> Any:
        """The code's default: the spec field's dataclass default, or the execution setting's."""
        if self.field:
            return spec_default(self.field)
        return {f.name: f.default for f in dataclasses.fields(Execution)}[self.name]

    def help_text(self, choices: tuple[str, ...] | None = None) -> str:
        """The help, its {default} and {choices} filled (argparse's % escaped)."""
        default = self.default
        shown = ",".join(map(_word, default)) if isinstance(default, tuple) else _word(default)
        text = self.help.format(
            default=shown,
            choices=", ".join(choices or self.choices or ()),
            env_retry=ENV_RETRY,
            retry_seconds=DEFAULT_RETRY_SECONDS,
        )
        return text.replace("%", "%%")

    def from_flag(self, value: Any) -> Any:
        """A parsed flag as the keyword's value; None (flag not given) stays None."""
        if value is None or value is False or value == "":
            return None
        return self.convert(value) if self.convert else value


def spec_default(field: str) -> Any:
    """The default of a dotted spec field (`seeds.replicates`, `device`), read off the spec's dataclasses."""
    owner: Any = Study
    *sections, last = field.split(".")
    for section in sections:
        value = {f.name: f.default for f in dataclasses.fields(owner)}[section]
        if not dataclasses.is_dataclass(value):  # dataset.download: an option Study reads itself
            break
        owner = type(value)
    found = {f.name: f for f in dataclasses.fields(owner)}[last]
    if found.default is not dataclasses.MISSING:
        return found.default
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return None


# `seedvar.sweep`'s keyword `download` sets the dataset option, which Study reads as `download`.
_DOWNLOAD_FIELD = "dataset.download"

SWEEP_OPTIONS: tuple[SweepOption, ...] = (
    SweepOption("models", str, "comma-separated models instead of the spec's", "models", convert=_comma_list),
    SweepOption("replicates", int, "number of replicates (seeds) per model", "seeds.replicates"),
    SweepOption("epochs", int, "training epochs", "train.epochs"),
    SweepOption(
        "deterministic",
        str,
        "deterministic CUDA kernels",
        "deterministic",
        choices=tuple(DETERMINISTIC_CHOICES),
        convert=DETERMINISTIC_CHOICES.__getitem__,
    ),
    SweepOption("device", str, "where to train", "device", choices=DEVICES),
    SweepOption(
        "jobs",
        int,
        "runs at once: local worker processes (default: on a CPU, cores / train.threads; on GPUs, "
        "--runs-per-gpu per GPU) or Ray tasks in flight (default: all)",
    ),
    SweepOption("download", bool, "download missing datasets", _DOWNLOAD_FIELD),
    SweepOption("executor", str, "where runs run: {choices} (default {default})"),
    SweepOption(
        "ray_address",
        str,
        "--executor ray: a running cluster (auto, ray://host:10001); default: a local Ray instance",
    ),
    SweepOption(
        "runs_per_gpu",
        int,
        "at most N small runs share one GPU (local workers or Ray tasks; default {default}); composes with --jobs",
        metavar="N",
    ),
    SweepOption(
        "claim_timeout",
        float,
        "tracking servers: a run whose heartbeat is older is taken over by another sweep (default {default:.0f})",
        metavar="SECONDS",
    ),
    SweepOption(
        "checkpoint_every",
        float,
        "seconds between epoch checkpoints of a run (default {default:.0f}; 0 = every epoch)",
        metavar="SECONDS",
    ),
    SweepOption(
        "retry_for",
        float,
        "keep retrying an unreachable tracking server this long (default ${env_retry} or {retry_seconds:.0f})",
        metavar="SECONDS",
    ),
    SweepOption(
        "target_ci",
        float,
        f"two-stage sweep: the replicates are a pilot, then each condition gets as many as a {LEVEL:.0%} "
        "interval of half-width H accuracy points needs (Stein's rule)",
        "seeds.target_ci",
        metavar="H",
    ),
    SweepOption(
        "target_diff",
        float,
        "two-stage sweep: replicates so that any two conditions D points apart are told apart "
        f"(power {POWER:g}, Holm-corrected {ALPHA:.0%})",
        "seeds.target_diff",
        metavar="D",
    ),
    SweepOption(
        "target_mode", str, "the test mode the targets are about (default {default})", "seeds.target_mode"
    ),
    SweepOption(
        "target_std",
        str,
        f"--target-diff sizes each pair at: upper80, the {UPPER:.0%} upper confidence bound of its pilot std "
        "(Browne 1995), or pilot, the pilot std itself (default {default})",
        "seeds.target_std",
        choices=STD_CHOICES,
    ),
    SweepOption(
        "max_replicates",
        int,
        "a two-stage sweep gives no condition more (default {default})",
        "seeds.max_replicates",
        metavar="N",
    ),
)
OPTIONS = {o.name: o for o in SWEEP_OPTIONS}
SPEC_KEYWORDS = {o.name: o.field for o in SWEEP_OPTIONS if o.field}  # keyword -> the spec field it sets
EXECUTION_KEYWORDS = tuple(o.name for o in SWEEP_OPTIONS if not o.field)  # keywords that are Execution's
