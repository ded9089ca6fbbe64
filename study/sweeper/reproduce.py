"""`seedvar reproduce RUN_ID`: retrain one logged run from its logged config and seeds, test it in its
logged modes and passes, and compare with what the run logged, as twins are compared: the weights
sha256, the predictions per mode, the accuracy per mode against the condition's seed spread, and the
environment key by key. DVC's `repro` compares hashes; MLflow records them but checks nothing.

It composes plan (the config), engine (the retraining) and record (the store), so it lives in the sweep
room. Bad input (an unknown run id, a sweep or condition run, a config or data that is gone, a user's
model whose source changed) is one line, exit 2, and nothing is written; a checked run gets the tag
`seedvar.reproduced` with its verdict and date.
"""

from __future__ import annotations

import datetime
import io
import json
from dataclasses import dataclass, field, replace

import numpy as np

from seedvar.errors import UserError
from seedvar.plan import RunConfig
from seedvar.record import schema as s
from seedvar.record.environment import device_name, environment
from seedvar.record.reader import StoredRun, latest_finished, read_runs
from seedvar.record.store import Store
from seedvar.results import EVAL, REFERENCE, Predictions, points
from seedvar.stats.flips import flip_rate, mean_churn

BIT_FOR_BIT = "reproduced bit for bit"
WEIGHTS_ONLY = "weights differ; predictions identical"
# environment keys not compared: the recording process's own thread count (the run's threads are part of
# its config) and the tracking library's version, which computes nothing
NOT_COMPARED = ("threads", "mlflow")
EXIT_SAME, EXIT_DIFFERS = 0, 1


@dataclass(frozen=True)
class ModeCheck:
    """One test mode: the logged and the retrained predictions and accuracy side by side."""

    mode: str
    passes: int
    identical: bool
    changed: float  # share of (pass, sample) predictions that changed class, 0..1
    own_flips: float  # the logged run's own pass-to-pass flip rate (nan with one pass)
    logged_acc: float  # mean over passes, points
    new_acc: float
    seed_std: float  # the condition's seed std of this mode's accuracy, points (nan with < 2 seeds)

    @property
    def diff(self) -> float:
        return self.new_acc - self.logged_acc


@dataclass
class Reproduction:
    """What `seedvar reproduce` found for one run: the verdict first, then what it rests on."""

    run_id: str
    run_name: str
    verdict: str
    weights_logged: str
    weights_new: str
    modes: list[ModeCheck]
    environment: list[tuple[str, str, str]]  # (key, logged, now) for every compared key
    seed_churn: float  # eval churn between the condition's seeds, 0..1 (nan with < 2 seeds)
    seconds: float
    device: str
    settings: str = ""  # the implementation settings it was retrained with (its config's)
    tagged: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def same_weights(self) -> bool:
        return self.weights_logged == self.weights_new

    @property
    def exit_code(self) -> int:
        """0 bit for bit, 1 when anything differs."""
        return EXIT_SAME if self.verdict == BIT_FOR_BIT else EXIT_DIFFERS

    @property
    def changed_environment(self) -> list[tuple[str, str, str]]:
        return [e for e in self.environment if e[1] != e[2]]

    def lines(self) -> list[str]:
        """The verdict line, then the weights, each mode and the environment's changed keys."""
        out = [
            self.verdict,
            f"run {self.run_name} ({self.run_id}), retrained on {self.device} in {self.seconds:.1f} s"
            + (f" ({self.settings}, as logged)" if self.settings else ""),
            f"weights sha256: logged {self.weights_logged[:16]}, now {self.weights_new[:16]}"
            + (" (identical)" if self.same_weights else " (differ)"),
        ]
        for m in self.modes:
            seed = f"{m.seed_std:.2f}" if np.isfinite(m.seed_std) else "n/a"
            own = f"{points(m.own_flips):.2f}%" if np.isfinite(m.own_flips) else "n/a (one pass)"
            out.append(
                f"{m.mode}: {m.passes} passes, predictions "
                + ("identical" if m.identical else f"{points(m.changed):.2f}% changed class")
                + f" (the run's own pass-to-pass flips {own}); accuracy logged {m.logged_acc:.2f}, now "
                f"{m.new_acc:.2f} ({m.diff:+.2f} points; the condition's seed std {seed})"
            )
        if np.isfinite(self.seed_churn):
            out.append(f"churn between the condition's seeds (eval): {points(self.seed_churn):.2f}%")
        changed = self.changed_environment
        out.append(
            "environment: "
            + ("; ".join(f"{k} {a} -> {b}" for k, a, b in changed) if changed else "the same in every key")
            + f" (compared: {', '.join(k for k, _, _ in self.environment)})"
        )
        return out + self.notes


def sample(store: Store, experiment: str, n: int) -> list[StoredRun]:
    """n finished runs of a study spread over its conditions: each condition's first replicate in turn, then
    each one's second, and so on (a fixed choice, so the same command checks the same runs)."""
    exp = store.experiment_id(experiment, create=False)
    if exp is None:
        raise _fail(f"no run or experiment {experiment!r} in {store.uri}: give a run id or a study's name")
    runs = sorted(
        latest_finished(read_runs(store, exp, s.tag_filter(s.TAG_KIND, s.KIND_RUN))).values(),
        key=lambda r: (r.varied != REFERENCE, r.replicate, r.model, not r.deterministic, r.variant),
    )
    if not runs:
        raise _fail(f"experiment {experiment!r} has no finished trained runs to reproduce")
    return runs[:n]


def _fail(msg: str) -> UserError:
    return UserError(f"reproduce: {msg}")


def _checked_run(store: Store, run_id: str) -> StoredRun:
    """The run, if it is a finished trained model's run; else one line."""
    try:
        run = StoredRun.of(store.get_run(run_id))
    except UserError:
        raise
    except Exception:
        raise _fail(f"no run {run_id!r} in {store.uri}: give the id of a trained model's run") from None
    if run.kind == s.KIND_SWEEP:
        raise _fail(f"{run.name} ({run_id}) is a sweep's parent run: give the id of one of its trained runs")
    if run.kind == s.KIND_CONDITION:
        raise _fail(f"{run.name} ({run_id}) is a condition's run: give the id of one of its seed runs")
    if run.kind != s.KIND_RUN:
        raise _fail(
            f"{run.name} ({run_id}) was not trained by seedvar (kind {run.kind or 'none'}): nothing to retrain"
        )
    if not run.finished:
        raise _fail(f"{run.name} ({run_id}) is {run.status}, not FINISHED: nothing logged to compare with")
    if not run.tags.get(s.TAG_WEIGHTS):
        raise _fail(f"{run.name} ({run_id}) logged no weights sha256 ({s.TAG_WEIGHTS})")
    return run


def _artifact(store: Store, run: StoredRun, path: str) -> bytes:
    try:
        return store.read_artifacts({run.run_id: run.artifact_uri}, path)[run.run_id]
    except Exception:
        raise _fail(f"{run.name} ({run.run_id}): its {path} is gone from the artifact store") from None


def logged_config(store: Store, run: StoredRun) -> RunConfig:
    """The run's config from its logged config.json, checked against its config hash tag."""
    blob = _artifact(store, run, s.ARTIFACT_CONFIG)
    try:
        cfg = RunConfig.from_dict(json.loads(blob))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _fail(
            f"{run.name} ({run.run_id}): its {s.ARTIFACT_CONFIG} is not a run config ({exc})"
        ) from None
    if cfg.config_hash != run.tags.get(s.TAG_CONFIG_HASH, cfg.config_hash):
        raise _fail(
            f"{run.name} ({run.run_id}): its {s.ARTIFACT_CONFIG} hashes to {cfg.config_hash}, not the logged "
            f"{run.tags[s.TAG_CONFIG_HASH]}: the config was changed after the run"
        )
    return cfg


def _check_source(run: StoredRun, cfg: RunConfig) -> None:
    """A user's model must still be the file the run trained (its logged sha256): else one line, nothing run."""
    if cfg.model_source_sha256 is None:
        return
    import seedvar.nets as nets

    try:
        now = nets.source_sha256(cfg.model)
    except nets.ModelError as exc:
        raise _fail(f"{run.name} ({run.run_id}): its model {cfg.model} cannot be found now ({exc})") from None
    if now != cfg.model_source_sha256:
        raise _fail(
            f"{run.name} ({run.run_id}): the source of {cfg.model} changed since the run (logged sha256 "
            f"{cfg.model_source_sha256[:12]}, now {str(now)[:12]}): the same model cannot be retrained"
        )


def _siblings(store: Store, run: StoredRun) -> list[StoredRun]:
    """The finished seed runs of the run's condition (itself included): its seed spread."""
    exp = store.get_run(run.run_id).info.experiment_id
    runs = read_runs(store, exp, s.tag_filter(s.TAG_KIND, s.KIND_RUN))
    same = [
        r for r in latest_finished(runs).values() if r.condition == run.condition and r.varied == REFERENCE
    ]
    return same or [run]


def _seed_std(runs: list[StoredRun], mode: str) -> float:
    values = [points(r.summaries[mode].acc_mean) for r in runs if mode in r.summaries]
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _environment(run: StoredRun, device: str) -> list[tuple[str, str, str]]:
    """(key, logged, now) for every environment key the run logged, and the device's name."""
    now = {**environment(), "device_name": device_name(device)}
    logged = {k: run.tags.get(s.environment_tag(k)) for k in now}
    logged["device_name"] = run.tags.get(s.TAG_DEVICE_NAME)
    return [(k, str(logged[k]), str(now[k])) for k in now if logged[k] is not None and k not in NOT_COMPARED]


def _verdict(weights_same: bool, modes: list[ModeCheck], env: list[tuple[str, str, str]]) -> str:
    changed = [f"{k} {a} -> {b}" for k, a, b in env if a != b]
    where = f"; environment: {', '.join(changed)}" if changed else ""
    if weights_same and all(m.identical for m in modes):
        return BIT_FOR_BIT
    if all(m.identical for m in modes):
        return WEIGHTS_ONLY + where
    parts = []
    for m in modes:
        if m.identical:
            continue
        stds = (
            f" ({m.diff / m.seed_std:+.2g} seed stds)" if np.isfinite(m.seed_std) and m.seed_std > 0 else ""
        )
        parts.append(
            f"{m.mode} accuracy {m.diff:+.2f} points{stds}, {points(m.changed):.1f}% of test predictions change class"
        )
    weights = "" if weights_same else "weights differ; "
    return f"differs: {weights}{'; '.join(parts)}{where}"


def reproduce_study(
    experiment: str,
    runs: int,
    *,
    tracking_uri: str | None = None,
    device: str | None = None,
    data_root: str | None = None,
    download: bool = False,
    tag: bool = True,
) -> list[Reproduction]:
    """`runs` runs of a study (spread over its conditions, `sample`), each retrained and compared."""
    if runs < 1:
        raise _fail(f"--runs must be at least 1, got {runs}")
    store = Store(tracking_uri, create=False)
    chosen = sample(store, experiment, runs)
    return [
        reproduce(
            r.run_id,
            tracking_uri=tracking_uri,
            device=device,
            data_root=data_root,
            download=download,
            tag=tag,
        )
        for r in chosen
    ]


def study_lines(reps: list[Reproduction]) -> list[str]:
    """The verdict over a sample first, then one row per run: name, id, verdict."""
    same = sum(r.exit_code == EXIT_SAME for r in reps)
    head = (
        f"{BIT_FOR_BIT}: {same} of {len(reps)} runs"
        if same == len(reps)
        else f"differs: {len(reps) - same} of {len(reps)} runs ({same} reproduced bit for bit)"
    )
    width = max(len(r.run_name) for r in reps)
    return [head] + [f"{r.run_name:<{width}}  {r.run_id}  {r.verdict}" for r in reps]


def reproduce(
    run_id: str,
    *,
    tracking_uri: str | None = None,
    device: str | None = None,
    data_root: str | None = None,
    download: bool = False,
    tag: bool = True,
) -> Reproduction:
    """Retrain one logged run and compare; tag it `seedvar.reproduced` (unless `tag` is False)."""
    import torch

    from seedvar.engine import compute

    store = Store(tracking_uri, create=False)
    run = _checked_run(store, run_id)
    cfg = logged_config(store, run)
    logged = Predictions.load(io.BytesIO(_artifact(store, run, s.ARTIFACT_PREDICTIONS)))
    target = device or cfg.device
    if target not in ("cpu", "cuda") and not target.startswith("cuda:"):
        raise _fail(f"--device must be cpu or cuda, got {target!r}")
    if target.startswith("cuda") and not torch.cuda.is_available():
        raise _fail(f"{run.name} was trained on {cfg.device}; no CUDA device here: pass --device cpu")
    notes = [] if target == cfg.device else [f"note: trained on {cfg.device}, retrained on {target}"]
    cfg = replace(cfg, device=target)
    _check_source(run, cfg)
    siblings = _siblings(store, run)

    result = compute.run(cfg, data_root=data_root, download=download)  # data gone: DataError, exit 2

    modes = []
    for mode in logged.modes:
        if mode not in result.predictions.passes:
            continue
        old, new = logged.passes[mode], result.predictions.passes[mode]
        same_shape = old.shape == new.shape
        identical = same_shape and bool(np.array_equal(old, new))
        modes.append(
            ModeCheck(
                mode=mode,
                passes=len(new),
                identical=identical,
                changed=float(np.mean(old != new)) if same_shape else float("nan"),
                own_flips=flip_rate(old) if len(old) > 1 else float("nan"),
                logged_acc=float(logged.accuracy(mode).mean()),
                new_acc=float(result.predictions.accuracy(mode).mean()),
                seed_std=_seed_std(siblings, mode),
            )
        )
    others = [r for r in siblings if r.run_id != run.run_id]
    churn = float("nan")
    if others and EVAL in logged.passes:
        blobs = store.read_artifacts({r.run_id: r.artifact_uri for r in others}, s.ARTIFACT_PREDICTIONS)
        preds = [logged] + [Predictions.load(io.BytesIO(b)) for b in blobs.values()]
        churn = mean_churn([(p.ids, p.passes[EVAL][0]) for p in preds if EVAL in p.passes])
    env = _environment(run, target)
    weights_same = result.weights_sha256 == run.tags[s.TAG_WEIGHTS]
    rep = Reproduction(
        run_id=run.run_id,
        run_name=run.name,
        verdict=_verdict(weights_same, modes, env),
        weights_logged=run.tags[s.TAG_WEIGHTS],
        weights_new=result.weights_sha256,
        modes=modes,
        environment=env,
        seed_churn=churn,
        seconds=result.seconds,
        device=target,
        settings=f"threads {cfg.train.threads}, deterministic {str(cfg.deterministic).lower()}, "
        f"precision {cfg.train.precision}",
        notes=notes,
    )
    if tag:
        date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        store.log(
            run.run_id, tags={s.TAG_REPRODUCED: f"{rep.verdict} ({date}, {device_name(target)})"[:5000]}
        )
        rep.tagged = True
    return rep
