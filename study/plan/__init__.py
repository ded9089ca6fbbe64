"""The plan: a study spec (TOML), validated, expanded into run configs with per-source seeds.

Pure and light: it knows no MLflow and trains nothing.
"""

from study.plan.runs import RunConfig, expand
from study.plan.seeding import SOURCES, TRAINING_SOURCES, VARIABLE_SOURCES, pass_seeds, run_seeds, source_seed
from study.plan.spec import (
    ExecutionSpec,
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
    "ExecutionSpec",
    "RunConfig",
    "SeedSpec",
    "Study",
    "TestSpec",
    "TrainSpec",
    "expand",
    "load_study",
    "parse_study",
    "parse_value",
    "pass_seeds",
    "run_seeds",
    "source_seed",
]
