"""Expand a study into runs: models x determinism settings x twin settings x dataset variants x replicates
(x sources), each with a stable hash.

The hash of a run's resolved config is what makes a sweep resumable: a run whose hash already has a
FINISHED run in the store is skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from seedvar.plan.seeding import run_seeds
from seedvar.plan.spec import TWIN_SETTINGS, Study, TestSpec, TrainSpec
from seedvar.results import REFERENCE, Condition


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one trained model and its tests."""

    study: str
    dataset: str
    dataset_options: dict[str, Any]
    model: str
    model_options: dict[str, Any]
    train: TrainSpec
    test: TestSpec
    deterministic: bool
    device: str
    replicate: int
    varied: str
    seeds: dict[str, int]
    # sha256 of the file defining a user's model (None for the built-in ones, whose code is seedvar's and
    # is identified by its version and git commit): editing the model then makes a new config, not a skip.
    model_source_sha256: str | None = None
    # "split=spatial" when the spec lists several values of dataset options: derived from
    # dataset_options, so left out of the hash (existing configs keep theirs).
    variant: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view, the one that is hashed and logged as the resolved config.

        A field added after the first release enters it only when set, so existing configs keep their hash.
        """
        out = dataclasses.asdict(self)
        if out["model_source_sha256"] is None:
            del out["model_source_sha256"]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """The config back from its logged JSON (`to_dict`): what `seedvar reproduce` retrains. Raises
        KeyError or TypeError when the JSON is not a run config."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in raw.items() if k in fields}
        train, test = dict(values["train"]), dict(values["test"])
        test["modes"] = tuple(test.get("modes", ()))
        values["train"], values["test"] = TrainSpec(**train), TestSpec(**test)
        values["seeds"] = {k: int(v) for k, v in values["seeds"].items()}
        return cls(**values)

    @property
    def condition(self) -> Condition:
        """The model, determinism and dataset variant it is compared across seeds under."""
        return Condition(self.model, self.deterministic, self.variant)

    @property
    def config_hash(self) -> str:
        """Stable across processes and sessions: sha256 of the canonical JSON, study name left out."""
        payload = {k: v for k, v in self.to_dict().items() if k not in ("study", "variant")}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def run_name(self) -> str:
        """Readable in the MLflow UI: model, determinism, variant values, varied source, replicate."""
        det = "det" if self.deterministic else "nondet"
        variant = "".join(f"-{_name_part(part)}" for part in self.variant.split(", ") if part)
        source = "" if self.varied == REFERENCE else f"-{self.varied}"
        return f"{self.model}-{det}{variant}{source}-r{self.replicate:02d}"


def _name_part(part: str) -> str:
    """A variant's part in a run name: a dataset option's value (`spatial`), a twin setting's name and
    value (`threads2`: a bare number would not say what it is)."""
    key, value = part.split("=", 1)
    return f"{key}{value}" if key in TWIN_SETTINGS else value


def twin_settings(study: Study) -> list[tuple[str, TrainSpec]]:
    """(label, train settings) per combination of the twin settings' values (`threads = [1, 2]`), in spec
    order; one ("", train) when the spec lists none. A value that is TrainSpec's default gets no label, so
    those runs keep the condition (and config) they have without the list."""
    keys = [k for k, _ in study.twins]
    out = []
    for values in itertools.product(*(v for _, v in study.twins)):
        chosen = dict(zip(keys, values, strict=True))
        default = TrainSpec()
        label = ", ".join(f"{k}={v}" for k, v in chosen.items() if v != getattr(default, k))
        out.append((label, dataclasses.replace(study.train, **chosen)))
    return out


def variants(study: Study) -> list[tuple[str, dict[str, Any]]]:
    """(label, dataset options) per combination of the listed dataset option values, in spec order;
    one ("", options) when the spec lists none."""
    axes = study.dataset_axes
    out = []
    for values in itertools.product(*(study.dataset_options[k] for k in axes)):
        chosen = dict(zip(axes, values, strict=True))
        label = ", ".join(f"{k}={v}" for k, v in chosen.items())
        out.append((label, {**study.dataset_options, **chosen}))
    return out


def expand(study: Study, device: str) -> list[RunConfig]:
    """All runs of a study, in a stable order (model, determinism, variant, source, replicate).

    A user's model is identified by its import path, its options and the sha256 of its source file.

    `vary = "all"` draws replicates 0..R-1 of every source; each source varied alone takes replicates
    1..R with the others at replicate 0, the base draw (the `all` reference of such a study is the
    ordinary 0..R-1).
    """
    import seedvar.nets as nets

    sources = {model: nets.source_sha256(model) for model in study.models}
    groups = [
        (s, range(study.seeds.replicates) if s == REFERENCE else range(1, study.seeds.replicates + 1))
        for s in study.seeds.vary
    ]
    runs = []
    for model in study.models:
        for det in study.deterministic:
            for twin, train in twin_settings(study):
                for variant, options in variants(study):
                    for varied, replicates in groups:
                        for r in replicates:
                            runs.append(
                                RunConfig(
                                    study=study.name,
                                    dataset=study.dataset,
                                    dataset_options=dict(options),
                                    model=model,
                                    model_options=dict(study.model_options.get(model, {})),
                                    train=train,
                                    test=study.test,
                                    deterministic=det,
                                    device=device,
                                    replicate=r,
                                    varied=varied,
                                    seeds={**run_seeds(study.seeds.base, r, varied), **study.seeds.fixed},
                                    model_source_sha256=sources[model],
                                    variant=", ".join(p for p in (variant, twin) if p),
                                )
                            )
    return runs
