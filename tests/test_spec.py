"""Study specs, the expanded plan and the per-source seeds."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from seedvar.errors import UserError
from seedvar.plan import (
    SOURCES,
    expand,
    load_study,
    parse_study,
    parse_value,
    pass_seeds,
    run_seeds,
    source_seed,
)
from seedvar.record.recorder import run_params

STUDIES = Path(__file__).resolve().parents[1] / "studies"

BASE = {
    "name": "t",
    "models": ["hybridsn"],
    "dataset": {"name": "synthetic_hsi"},
    "train": {"epochs": 2},
    "seeds": {"replicates": 3},
}


def spec(**changes):
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            raw.setdefault(section, {})[field] = value
        else:
            raw[section] = value
    return raw


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_study_is_valid(path):
    study = load_study(path)
    assert expand(study, "cpu")


def test_quick_study_is_sized_for_the_acceptance_bar():
    study = load_study(STUDIES / "quick.toml")
    assert study.models == ("hybridsn",) and study.dataset == "indian_pines"
    assert study.seeds.replicates >= 5 and study.test.passes == 10
    assert set(study.test.modes) == {"eval", "train", "mc_dropout"}


def test_overrides_and_set_values(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\nmodels = ["hybridsn"]\n[dataset]\nname = "synthetic_hsi"\n')
    study = load_study(
        path, {"train.epochs": 7, "seeds.replicates": 2, "deterministic": "both", "train.lr": 0.5}
    )
    assert study.train.epochs == 7 and study.seeds.replicates == 2 and study.train.lr == 0.5
    assert study.deterministic == (True, False)
    assert parse_value("0.01") == 0.01 and parse_value("true") is True and parse_value("adam") == "adam"
    assert parse_value('["a", "b"]') == ["a", "b"]


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"bogus": 1}, "bogus"),
        ({"train__epochs": 0}, "train.epochs"),
        ({"train__epochs": -3}, "train.epochs"),
        ({"train__epochs": "ten"}, "train.epochs"),
        ({"train__lr": 0}, "train.lr"),
        ({"train__optimizer": "rmsprop"}, "train.optimizer"),
        ({"train__nesterov": True}, "train.nesterov"),
        ({"seeds__replicates": 0}, "seeds.replicates"),
        ({"seeds__vary": ["split", "weather"]}, "seeds.vary"),
        ({"test__modes": ["eval", "dream"]}, "test.modes"),
        ({"test__passes": 0}, "test.passes"),
        ({"models": []}, "models"),
        ({"models": ["resnet9000"]}, "models"),
        ({"dataset": {"name": "mnist"}}, "dataset.name"),
        ({"dataset": {"name": "synthetic_hsi", "windoww": 5}}, "dataset.windoww"),
        ({"deterministic": "sometimes"}, "deterministic"),
        ({"device": "tpu"}, "device"),
        ({"model_options": {"hybridsn": {"dropoutt": 0.1}}}, "model_options.hybridsn.dropoutt"),
    ],
)
def test_bad_specs_name_file_and_key(changes, key):
    with pytest.raises(UserError) as err:
        parse_study(spec(**changes), source="bad.toml")
    message = str(err.value)
    assert message.startswith(f"bad.toml: {key}:"), message
    assert "\n" not in message


def test_malformed_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_study(bad)
    with pytest.raises(UserError, match="no such study spec"):
        load_study(tmp_path / "missing.toml")


def test_zero_passes_allowed_for_eval_only():
    study = parse_study(spec(test__modes=["eval"], test__passes=0))
    assert study.test.modes == ("eval",)


def test_source_seeds_are_independent_streams():
    a = run_seeds(0, 3, "all")
    b = run_seeds(0, 4, "all")
    assert set(a) == set(SOURCES)
    assert all(a[s] != b[s] for s in SOURCES)
    assert len(set(a.values())) == len(SOURCES)
    assert run_seeds(0, 3, "all") == a  # stable
    assert source_seed(1, "init", 3) != source_seed(0, "init", 3)


def test_one_source_at_a_time_moves_only_that_source():
    base = run_seeds(0, 0, "all")
    for source in ("split", "init", "order", "augment", "dropout"):
        seeds = run_seeds(0, 2, source)
        moved = {s for s in SOURCES if seeds[s] != base[s]}
        assert moved == {source}
    assert run_seeds(0, 5, "numerical") == base


def test_pass_seeds_are_prefix_stable():
    assert pass_seeds(123, 3) == pass_seeds(123, 10)[:3]
    assert len(set(pass_seeds(123, 30))) == 30


def test_expand_counts_names_and_hashes():
    study = parse_study(
        spec(models=["hybridsn", "mobilenet_v2"], deterministic="both", dataset={"name": "synthetic_hsi"})
    )
    runs = expand(study, "cpu")
    assert len(runs) == 2 * 2 * 3
    assert len({r.config_hash for r in runs}) == len(runs)
    assert runs[0].run_name == "hybridsn-det-r00"
    assert expand(study, "cpu")[5].config_hash == runs[5].config_hash  # stable across calls
    assert expand(study, "cuda")[0].config_hash != runs[0].config_hash
    sources = parse_study(spec(seeds__vary=["init", "order"]))
    runs = expand(sources, "cpu")
    assert sources.seeds.vary == ("all", "init", "order")  # the `all` reference comes with every list
    assert [(r.varied, r.replicate) for r in runs] == [
        *(("all", r) for r in range(3)),
        *(("init", r) for r in (1, 2, 3)),
        *(("order", r) for r in (1, 2, 3)),
    ]
    ordinary = expand(parse_study(spec()), "cpu")
    assert [r.config_hash for r in runs[:3]] == [r.config_hash for r in ordinary]  # `all` = ordinary seeds
    assert parse_study(spec(seeds__vary=["order", "all", "init"])).seeds.vary == ("all", "order", "init")
    assert runs[3].run_name == "hybridsn-det-init-r01"
    params = run_params(runs[3])
    assert params["seed.init"] == str(runs[3].seeds["init"]) and params["train.epochs"] == "2"
    assert params["test.modes"] == "eval,train,mc_dropout"


def test_a_fixed_source_keeps_its_seed_in_every_run_and_others_still_vary():
    runs = expand(parse_study(spec(seeds__fixed={"split": 345}, seeds__replicates=3)), "cpu")
    assert {r.seeds["split"] for r in runs} == {345}
    assert len({r.seeds["init"] for r in runs}) == 3 and len({r.config_hash for r in runs}) == 3
    plain = expand(parse_study(spec(seeds__replicates=3)), "cpu")
    assert [r.seeds["init"] for r in runs] == [r.seeds["init"] for r in plain]  # nothing else moved
    for fixed, phrase in (({"weather": 1}, "seeds.fixed.weather"), ({"split": -1}, "seeds.fixed.split")):
        with pytest.raises(UserError, match=phrase):
            parse_study(spec(seeds__fixed=fixed))
    with pytest.raises(UserError, match="either varied or fixed"):
        parse_study(spec(seeds__fixed={"init": 1}, seeds__vary=["init"]))


def test_paper_spec_is_the_published_hybridsn_protocol():
    paper = load_study(STUDIES / "paper.toml")
    assert paper.dataset == "indian_pines" and paper.models == ("hybridsn",)
    assert {k: paper.dataset_options[k] for k in ("pca", "window", "train_fraction")} == {
        "pca": 30,
        "window": 25,
        "train_fraction": 0.3,
    }
    assert paper.seeds.fixed == {"split": 345} and paper.seeds.replicates == 10
    assert (paper.train.optimizer, paper.train.lr, paper.train.batch_size, paper.train.epochs) == (
        "adam",
        0.001,
        256,
        100,
    )
    assert paper.deterministic == (True, False)
    assert load_study(STUDIES / "lab.toml").deterministic == (True, False)


def test_existing_specs_keep_their_config_hashes():
    """New spec fields must not move the hash of a config written before them: a finished run would be
    trained again (pinned: the quick study's first and last runs, and a sources-study run)."""
    quick = expand(load_study(STUDIES / "quick.toml"), "cpu")
    assert (quick[0].run_name, quick[0].config_hash) == ("hybridsn-det-r00", "e303164abd6a0aa7")
    assert quick[-1].config_hash == "efbf3e7998484466"


def test_listed_dataset_options_become_conditions():
    study = parse_study(spec(dataset={"name": "synthetic_hsi", "split": ["random", "spatial"], "window": 9}))
    runs = expand(study, "cpu")
    assert study.dataset_axes == ("split",) and len(runs) == 2 * 3
    assert [r.variant for r in runs] == ["split=random"] * 3 + ["split=spatial"] * 3
    assert [r.dataset_options for r in runs[2:4]] == [
        {"split": "random", "window": 9},
        {"split": "spatial", "window": 9},
    ]
    assert runs[3].run_name == "hybridsn-det-spatial-r00"
    assert runs[0].seeds == runs[3].seeds  # the same seeds under each variant: a paired comparison
    single = expand(
        parse_study(spec(dataset={"name": "synthetic_hsi", "split": "random", "window": 9})), "cpu"
    )
    assert runs[0].config_hash == single[0].config_hash and single[0].variant == ""
    for bad in ([], ["random", "random"], [["a"]]):
        with pytest.raises(UserError, match="dataset.split: a list of values"):
            parse_study(spec(dataset={"name": "synthetic_hsi", "split": bad}))


def test_execution_settings_resolve_flags_over_the_table_over_the_defaults():
    from seedvar.plan.execution import DEFAULT_CHECKPOINT_EVERY, Execution

    default = Execution.resolve({}, "s.toml")
    assert (default.executor, default.jobs, default.runs_per_gpu, default.checkpoint_every) == (
        "local",
        None,
        1,
        DEFAULT_CHECKPOINT_EVERY,
    )
    table = {"jobs": 3, "runs_per_gpu": 2, "checkpoint_every": 5}
    spec = Execution.resolve(table, "s.toml")
    assert (spec.jobs, spec.runs_per_gpu, spec.checkpoint_every) == (3, 2, 5.0)
    flagged = Execution.resolve(table, "s.toml", jobs=1, runs_per_gpu=None, claim_timeout=7.5)
    assert (flagged.jobs, flagged.runs_per_gpu, flagged.claim_timeout) == (1, 2, 7.5)
    with pytest.raises(UserError, match=r"s.toml: execution.jobs: must be an integer"):
        Execution.resolve({"jobs": "many"}, "s.toml")
    with pytest.raises(UserError, match=r"execution.jobs \(--jobs\): must be at least 1"):
        Execution.resolve({}, "s.toml", jobs=0)


def test_jobs_and_runs_per_gpu_compose():
    from seedvar.engine.executors.local import workers
    from seedvar.plan.execution import Execution

    # GPUs: at most runs_per_gpu workers on one GPU, at most jobs in all, worker w on GPU w % gpus
    assert workers(Execution(runs_per_gpu=4), "cuda", 1, 100, gpus=2) == (8, [0, 1] * 4)
    assert workers(Execution(jobs=3, runs_per_gpu=2), "cuda", 1, 100, gpus=2) == (3, [0, 1, 0])
    assert workers(Execution(jobs=16, runs_per_gpu=2), "cuda", 1, 100, gpus=1) == (2, [0, 0])
    assert workers(Execution(runs_per_gpu=4), "cuda", 1, 3, gpus=1) == (
        3,
        [0, 0, 0],
    )  # never more than runs
    # CPU: jobs, else cores // threads; runs_per_gpu plays no part
    assert workers(Execution(jobs=5, runs_per_gpu=3), "cpu", 1, 100, gpus=0) == (5, [])
    cores = len(os.sched_getaffinity(0))
    assert workers(Execution(), "cpu", 1, 100, gpus=0) == (cores, [])
    assert workers(Execution(), "cpu", cores, 100, gpus=0) == (1, [])


def test_sweep_options_are_one_table_for_the_flags_the_api_and_the_spec():
    """Each sweep option is declared once (seedvar.plan.options): its spec field exists with the choices the
    spec checks, the execution settings are exactly Execution's fields, the command has one flag per option
    and seedvar.sweep's docstring names each keyword."""
    import dataclasses

    import seedvar.api as api
    from seedvar.cli import _parser
    from seedvar.plan.execution import Execution
    from seedvar.plan.options import EXECUTION_KEYWORDS, SPEC_KEYWORDS, SWEEP_OPTIONS, spec_default
    from seedvar.plan.spec import _CHOICES
    from seedvar.stats.twostage import STD_CHOICES

    assert set(EXECUTION_KEYWORDS) == {f.name for f in dataclasses.fields(Execution)}
    for option in SWEEP_OPTIONS:
        if option.field:
            spec_default(option.field)  # the field exists (KeyError otherwise)
        assert option.name in api.sweep.__doc__, option.name
        assert not re.search(r"default:? \$?\w*\d", option.help), (
            f"{option.name}: a default written in its help"
        )
    assert SPEC_KEYWORDS["device"] == "device" and _options("device") == _CHOICES["device"]
    assert _options("target_std") == STD_CHOICES
    sweep = next(a for a in _parser()._subparsers._group_actions[0].choices.items() if a[0] == "sweep")[1]
    flags = {s for a in sweep._actions for s in a.option_strings}
    assert {o.flag for o in SWEEP_OPTIONS} <= flags
    # every flag's default is None (or a switch's False): the spec's value or the code's default applies
    assert all(
        a.default in (None, False) for a in sweep._actions if a.dest in {o.name for o in SWEEP_OPTIONS}
    )


def _options(name: str) -> tuple[str, ...] | None:
    from seedvar.plan.options import OPTIONS

    return OPTIONS[name].choices


def test_sweep_flags_reach_the_api_as_its_keywords(monkeypatch):
    """The command passes each given flag as seedvar.sweep's keyword, converted (comma lists, true/false/both);
    a flag wins over --set of the same keyword; flags not given are not passed."""
    import seedvar.api as api
    from seedvar.cli import main

    seen: dict = {}

    def fake_sweep(spec, **kwargs):
        seen.update(kwargs, spec=spec)
        return type("R", (), {"failed": []})()

    monkeypatch.setattr(api, "sweep", fake_sweep)
    argv = ["sweep", "quick", "--models", "a, b", "--deterministic", "both", "--download"]
    argv += ["--executor", "local"]
    argv += ["--replicates", "4", "--set", "replicates=9", "--set", "train.lr=0.5", "--claim-timeout", "30"]
    assert main(argv) == 0
    assert seen["models"] == ["a", "b"] and seen["deterministic"] == "both" and seen["download"] is True
    assert seen["replicates"] == 4 and seen["train.lr"] == 0.5 and seen["claim_timeout"] == 30.0
    assert seen["executor"] == "local" and "jobs" not in seen and "target_ci" not in seen
    seen.clear()
    assert main(["sweep", "quick", "--deterministic", "false"]) == 0
    assert seen["deterministic"] is False and "models" not in seen and "download" not in seen
