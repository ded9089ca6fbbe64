"""The record of a sweep in MLflow: one parent run per sweep, one child run per trained model.

`RunRecorder` owns a child run's lifecycle (start or resume, epochs, the result, FAILED / KILLED);
`SweepRecorder` the parent run's. Names come from the run schema; the engine never calls MLflow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seedvar.plan import SOURCES, RunConfig, Study
from seedvar.record import schema as s
from seedvar.record import view
from seedvar.record.claims import LocalClaims, RunClaims, beating, claims_for, is_live
from seedvar.record.defaults import DEFAULT_CLAIM_TIMEOUT
from seedvar.record.environment import device_name, environment, to_json
from seedvar.record.reader import StoredRun, get_run, read_runs
from seedvar.record.store import Store, StoreUnavailable, interrupts_held
from seedvar.results import EpochStats, RunResult, describe
from seedvar.stats.twostage import Decision, Target

# Seconds an epoch's metrics may wait for an unreachable store before training goes on without them
# (they are sent with the next epoch).
EPOCH_RETRY_SECONDS = 10.0


def run_params(cfg: RunConfig) -> dict[str, str]:
    """Every resolved setting and every per-source seed, flat, as MLflow params."""
    flat: dict[str, Any] = {
        "dataset": cfg.dataset,
        s.PARAM_MODEL: cfg.model,
        "deterministic": cfg.deterministic,
        "device": cfg.device,
        s.PARAM_REPLICATE: cfg.replicate,
        "varied_source": cfg.varied,
    }
    flat.update({f"dataset.{k}": v for k, v in sorted(cfg.dataset_options.items())})
    flat.update({f"model.{k}": v for k, v in sorted(cfg.model_options.items())})
    if cfg.model_source_sha256 is not None:
        flat[s.PARAM_MODEL_SOURCE] = cfg.model_source_sha256
    flat.update({f"train.{k}": v for k, v in dataclasses.asdict(cfg.train).items()})
    flat.update({f"test.{k}": v for k, v in dataclasses.asdict(cfg.test).items()})
    flat.update({f"{s.PARAM_SEED_PREFIX}{src}": cfg.seeds[src] for src in SOURCES})
    return {k: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for k, v in flat.items()}


class RunRecorder:
    """One trained model's MLflow run, from creation (or resumption) to FINISHED, FAILED or KILLED."""

    def __init__(self, store: Store, run_id: str, logged_epochs: int = 0) -> None:
        self.store, self.run_id, self.logged_epochs = store, run_id, logged_epochs
        # epochs the store could not take (or confirm) yet, each with the time it was first sent
        self.pending: list[tuple[EpochStats, int]] = []

    @classmethod
    def start(cls, store: Store, cfg: RunConfig, experiment_id: str, parent_id: str) -> RunRecorder:
        """A new child run with every param, the identifying tags and the resolved config."""
        tags = {
            s.TAG_CONFIG_HASH: cfg.config_hash,
            s.TAG_MODEL: cfg.model,
            s.TAG_REPLICATE: str(cfg.replicate),
            s.TAG_VARIED: cfg.varied,
            s.TAG_DETERMINISTIC: str(cfg.deterministic).lower(),
            s.TAG_KIND: s.KIND_RUN,
        }
        if cfg.variant:
            tags[s.TAG_VARIANT] = cfg.variant
        run_id = store.start_run(experiment_id, cfg.run_name, tags, parent_id=parent_id)
        env = environment()
        env_tags = {f"{s.TAG_PREFIX}{k}": v for k, v in env.items()}
        if "git_commit" in env:
            env_tags[s.TAG_GIT_COMMIT] = env["git_commit"]
        env_tags[s.TAG_DEVICE_NAME] = device_name(cfg.device)
        store.log(run_id, params=run_params(cfg), tags=env_tags)
        store.log_files(
            run_id, {s.ARTIFACT_CONFIG: to_json(cfg.to_dict()), s.ARTIFACT_ENVIRONMENT: to_json(env)}
        )
        return cls(store, run_id)

    @classmethod
    def resume(cls, store: Store, run_id: str, epoch: int) -> RunRecorder:
        """The same MLflow run, RUNNING again from a checkpoint taken after `epoch` epochs."""
        store.set_running(run_id)
        store.log(run_id, tags={s.TAG_RESUMED: epoch})
        store.delete_tag(run_id, s.TAG_FAILURE)  # the reason it stopped no longer holds
        logged = store.metric_history(run_id, s.train_metric("loss"))
        return cls(store, run_id, logged_epochs=max((step for step, _ in logged), default=0))

    @staticmethod
    def abandon(store: Store, run_id: str, reason: str) -> None:
        """A run left RUNNING by a process that died before any checkpoint: FAILED, with the reason."""
        store.log(run_id, tags={s.TAG_FAILURE: reason})
        store.end(run_id, "FAILED")

    def log_data(self, cfg: RunConfig, info: Mapping[str, int | float | str], fingerprint: str) -> None:
        """Facts of the loaded data (pixels, PCA variance, ...) as params, and the data as an MLflow
        dataset input named after the dataset, its fingerprint as digest, its settings as profile."""
        self.store.log(self.run_id, params={f"{s.PARAM_DATA_PREFIX}{k}": v for k, v in info.items()})
        profile = {"split_seed": cfg.seeds["split"], **cfg.dataset_options, **info}
        self.store.log_dataset(
            self.run_id,
            name=cfg.dataset,
            digest=s.dataset_digest(fingerprint),
            source=str(info.get("source", cfg.dataset)),
            profile=profile,
            context=s.DATASET_CONTEXT,
        )

    def log_epoch(self, stats: EpochStats) -> bool:
        """An epoch's training metrics; True when every epoch so far is in the store.

        Epochs logged before an interruption are not logged twice. While the store is unreachable
        (beyond a short retry) training goes on and the epoch waits: it is sent with the next one, and
        at the latest before the run is marked FINISHED, so no metric is silently dropped.
        """
        if stats.epoch > self.logged_epochs and all(st.epoch != stats.epoch for st, _ in self.pending):
            self.pending.append((stats, int(time.time() * 1000)))
        return self.flush(budget=min(EPOCH_RETRY_SECONDS, self.store.retry_for))

    def flush(self, budget: float | None = None) -> bool:
        """Send the pending epochs; False (nothing lost) when the store is still unreachable.

        Each epoch keeps the timestamp of its first sending: the store may have taken a batch whose answer
        was lost, and the same values with the same timestamp are stored once, not twice.
        """
        try:
            self._send_pending(budget)
        except StoreUnavailable:
            return False
        return True

    def _send_pending(self, budget: float | None = None) -> None:
        if not self.pending:
            return
        metrics = [(*m, stamp) for st, stamp in self.pending for m in s.epoch_metrics(st)]
        self.store.log(self.run_id, metrics, budget=budget)
        self.logged_epochs = self.pending[-1][0].epoch
        self.pending.clear()

    def finish(self, result: RunResult) -> None:
        """Weights hash, every test pass's metrics, the summaries, a one-line description (the runs
        table's Description column) and the predictions: FINISHED. Raises StoreUnavailable when the
        store stays away for the whole retry window: the run then stays RUNNING, resumable."""
        self._send_pending()  # every epoch is in the store before the run can be FINISHED
        self.store.log(
            self.run_id,
            params=s.test_params(result),
            tags={
                s.TAG_WEIGHTS: result.weights_sha256,
                s.TAG_NOTE: describe(result.summaries, s.DESCRIPTION_MODES),
            },
        )
        self.store.log(self.run_id, s.test_metrics(result))
        self.store.log_files(self.run_id, {s.ARTIFACT_PREDICTIONS: result.predictions.to_bytes()})
        self.store.log(self.run_id, [(s.METRIC_TOTAL_SECONDS, result.seconds, 0)])
        self.store.end(self.run_id, "FINISHED")

    def stand_down(self) -> None:
        """A new run whose claim lost to another sweep's: it never trained, so it is removed."""
        with contextlib.suppress(Exception):
            self.store.delete_run(self.run_id)

    def fail(self, reason: str) -> None:
        """FAILED with its reason; recording must not raise over the error being recorded."""
        with contextlib.suppress(Exception):
            self.store.log(self.run_id, tags={s.TAG_FAILURE: reason})
            self.store.end(self.run_id, "FAILED")

    def kill(self, reason: str) -> None:
        """KILLED (Ctrl-C, SIGTERM): recorded whole even if the user presses Ctrl-C again."""
        with interrupts_held(deliver=False), contextlib.suppress(Exception):
            self.store.log(self.run_id, tags={s.TAG_FAILURE: reason})
            self.store.end(self.run_id, "KILLED")


def tag_experiment(
    store: Store, experiment_id: str, configs: list[RunConfig], target: Target | None = None
) -> None:
    """Make the study open in MLflow's UI as a model-training experiment on seedvar's shared view of
    its runs table (its conditions as rows), with this plan's modes among its columns; a two-stage study
    also keeps its target, so that its report can state and check the rule."""
    modes = list(dict.fromkeys(m for c in configs for m in c.test.modes))
    current = store.experiment_tags(experiment_id)
    tags = view.experiment_tags(modes, current)
    if target is not None and target.active:
        tags[s.TAG_TARGET] = target.to_json()
    # only what changes: sweeps starting together then seldom race to insert a tag (Store.call retries that)
    store.set_experiment_tags(experiment_id, {k: v for k, v in tags.items() if current.get(k) != v})


class SweepRecorder:
    """A sweep's parent run: the study's settings, spec and plan; its end status and failed runs."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        timeout: float = DEFAULT_CLAIM_TIMEOUT,
        lock: contextlib.ExitStack | None = None,
    ) -> None:
        self.store, self.run_id, self.timeout = store, run_id, timeout
        self._lock = lock or contextlib.ExitStack()  # a local sweep's own file lock, held until it ends

    @classmethod
    def start(
        cls,
        store: Store,
        experiment_id: str,
        study: Study,
        configs: list[RunConfig],
        device: str,
        timeout: float = DEFAULT_CLAIM_TIMEOUT,
    ) -> SweepRecorder:
        """The parent run; sweeps of this study whose process died without ending theirs are closed.

        Beside a local store the sweep holds a file lock from before its run exists until it ends (the
        lock dies with its process), so the next sweep closes a dead one at once; on a tracking server a
        sweep is dead once its heartbeat is older than `timeout`.
        """
        owner = uuid.uuid4().hex
        claims = claims_for(store, experiment_id, timeout=timeout)
        lock = contextlib.ExitStack()
        if isinstance(claims, LocalClaims):
            lock.enter_context(claims.claim(_sweep_key(owner), remove=True))
        try:
            _close_dead_sweeps(store, experiment_id, claims, timeout)
            run_id = store.start_run(
                experiment_id,
                f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
                {
                    s.TAG_KIND: s.KIND_SWEEP,
                    s.TAG_SPEC: study.source,
                    s.TAG_NOTE: study.description,
                    s.TAG_OWNER: owner,
                },
            )
            store.log(run_id, params=_study_params(study, device))
            spec_text = Path(study.source).read_bytes() if Path(study.source).is_file() else b""
            store.log_files(
                run_id,
                {s.ARTIFACT_STUDY: spec_text, s.ARTIFACT_PLAN: to_json([c.to_dict() for c in configs])},
            )
        except BaseException:
            lock.close()
            raise
        return cls(store, run_id, timeout, lock)

    def alive(self) -> contextlib.AbstractContextManager[None]:
        """Heartbeats while the sweep runs, so a later sweep can tell a dead one from a live one."""
        return beating(self.store, self.run_id, self.timeout / 4)

    def log_decisions(
        self, target: Target, decisions: Mapping[str, Decision], configs: list[RunConfig]
    ) -> None:
        """A two-stage sweep's target as params and each condition's decision as metrics; the plan
        artifact then lists the second stage's runs too."""
        params = {f"{s.TARGET_PREFIX}{k}": str(v) for k, v in dataclasses.asdict(target).items()}
        keys = {c.condition.name: c.condition.key for c in configs}
        metrics = [
            (s.target_metric(keys[cond], stat), float(getattr(d, attr)), 0)
            for cond, d in decisions.items()
            for stat, attr in s.TARGET_STATS.items()
        ]
        self.store.log(self.run_id, metrics, params=params)
        self.store.log_files(self.run_id, {s.ARTIFACT_PLAN: to_json([c.to_dict() for c in configs])})

    def end(self, status: str, failed: int) -> None:
        """FINISHED or KILLED, with how many runs failed; never cut short by a second Ctrl-C."""
        with interrupts_held(deliver=False):
            try:
                self.store.log(self.run_id, tags={s.TAG_FAILED_RUNS: str(failed)})
                self.store.end(self.run_id, status)
            finally:
                self.release()

    def release(self) -> None:
        """Let go of the sweep's lock (local stores): a sweep that could not record its end (the store
        stayed away) leaves its run RUNNING, and the next sweep closes it."""
        self._lock.close()


def _sweep_key(owner: str) -> str:
    return f"sweep-{owner}"


def _close_dead_sweeps(
    store: Store, experiment_id: str, claims: LocalClaims | RunClaims, timeout: float
) -> None:
    """Parent runs left RUNNING by sweeps whose process died: FAILED, with the reason."""
    for run in read_runs(store, experiment_id, s.tag_filter(s.TAG_KIND, s.KIND_SWEEP)):
        if run.status != "RUNNING":
            continue
        owner = run.tags.get(s.TAG_OWNER)
        if isinstance(claims, LocalClaims) and owner:
            with claims.claim(_sweep_key(owner), remove=True) as lock:
                # under its lock, read again: a sweep that just ended let go of its lock after ending
                if lock.held and get_run(store, run.run_id).status == "RUNNING":
                    _close_dead(store, run.run_id, "the sweep's process stopped")
        elif not is_live(run, timeout):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.heartbeat))
            _close_dead(store, run.run_id, f"the sweep's process stopped (no heartbeat since {since})")


def _close_dead(store: Store, run_id: str, reason: str) -> None:
    store.log(run_id, tags={s.TAG_FAILURE: reason})
    store.end(run_id, "FAILED")


def record_conditions(
    store: Store,
    experiment_id: str,
    spreads: Mapping[str, Mapping[str, Mapping[str, float | int | None]]],
    members: Mapping[str, Sequence[StoredRun]],
) -> dict[str, str]:
    """One run per condition (kind `condition`, named by its key), kept up to date: its spread across
    seeds per mode as `seeds.<mode>.<stat>` metrics and a one-line description; the condition's runs
    become its child runs (the sweep that trained each stays in its `seedvar.sweep_run` tag), so the
    MLflow UI lists conditions as rows and one click (the run's page, with its Child runs) leads to the
    seeds. Returns {condition key: run id}."""
    existing = read_runs(store, experiment_id, s.tag_filter(s.TAG_KIND, s.KIND_CONDITION))
    # the earliest run of a condition wins, as in _condition_run, should a race have left two
    found = {r.tags.get(s.TAG_CONDITION, ""): r for r in sorted(existing, key=_seniority, reverse=True)}
    ids = {}
    for key, by_mode in spreads.items():
        run = found.get(key)
        run_id = run.run_id if run is not None else _condition_run(store, experiment_id, key)
        metrics = [
            (s.seed_metric(mode, stat), float(value), 0)
            for mode, values in by_mode.items()
            for stat, value in values.items()
            if value is not None
        ]
        store.log(run_id, metrics, tags={s.TAG_NOTE: view.condition_note(by_mode)})
        if run is None or run.status != "FINISHED":
            store.end(run_id, "FINISHED")
        for member in members.get(key, []):
            parent = member.tags.get(s.TAG_PARENT, "")
            if parent != run_id or member.tags.get(s.TAG_CONDITION) != key:
                sweep = {s.TAG_SWEEP_RUN: parent} if parent and s.TAG_SWEEP_RUN not in member.tags else {}
                store.log(member.run_id, tags={s.TAG_PARENT: run_id, s.TAG_CONDITION: key, **sweep})
        ids[key] = run_id
    return ids


def _condition_run(store: Store, experiment_id: str, key: str) -> str:
    """A new condition run; when sweeps on several hosts create one at once, the earliest (start time,
    then id) stays and the others are deleted by their own creators, as claims settle (claims.py)."""
    mine = store.start_run(experiment_id, key, {s.TAG_KIND: s.KIND_CONDITION, s.TAG_CONDITION: key})
    rivals = read_runs(
        store,
        experiment_id,
        f"{s.tag_filter(s.TAG_KIND, s.KIND_CONDITION)} and {s.tag_filter(s.TAG_CONDITION, key)}",
    )
    first = min(rivals, key=_seniority)
    if first.run_id != mine:
        store.delete_run(mine)
    return first.run_id


def _seniority(run: StoredRun) -> tuple[int, str]:
    """Which of two condition runs stays: the earlier started, then the smaller id (every host agrees)."""
    return run.start_time, run.run_id


def _study_params(study: Study, device: str) -> dict[str, str]:
    return {
        "study": study.name,
        "dataset": study.dataset,
        "models": ",".join(study.models),
        "device": device,
        "deterministic": ",".join(str(d).lower() for d in study.deterministic),
        "seeds.base": str(study.seeds.base),
        "seeds.replicates": str(study.seeds.replicates),
        "seeds.vary": ",".join(study.seeds.vary),
        "seeds.fixed": ",".join(f"{k}={v}" for k, v in sorted(study.seeds.fixed.items())) or "none",
        **({"dataset.compared": ",".join(study.dataset_axes)} if study.dataset_axes else {}),
        "train.epochs": str(study.train.epochs),
        "test.modes": ",".join(study.test.modes),
        "test.passes": str(study.test.passes),
    }
