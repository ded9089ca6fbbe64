"""The plan: a study spec (TOML), validated, expanded into run configs with per-source seeds.

Pure and light: it knows no MLflow and trains nothing.
"""

from seedvar.plan.ready import ReadyStudy, locate, ready_studies
from seedvar.plan.runs import RunConfig, expand
from seedvar.plan.seeding import (
    SOURCES,
    TRAINING_SOURCES,
    VARIABLE_SOURCES,
    pass_seeds,
    run_seeds,
    source_seed,
)
from seedvar.plan.spec import (
    SeedSpec,
    Study,
    TestSpec,
    TrainSpec,
    load_study,
    parse_study,
    parse_value,
)

__all__ = [
    "SOURCES",
    "TRAINING_SOURCES",
    "VARIABLE_SOURCES",
    "ReadyStudy",
    "RunConfig",
    "SeedSpec",
    "Study",
    "TestSpec",
    "TrainSpec",
    "expand",
    "load_study",
    "locate",
    "parse_study",
    "parse_value",
    "pass_seeds",
    "ready_studies",
    "run_seeds",
    "source_seed",
]
