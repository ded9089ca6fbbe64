"""A trained model's MLflow run, from creation (or resumption) to FINISHED, FAILED or KILLED.

`RunRecorder` writes a run under the run schema's names (record/schema.py); the sweep's parent run is
record/sweep_run.py's, the condition runs record/condition_runs.py's. The engine never calls MLflow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from seedvar.plan import SOURCES, RunConfig
from seedvar.record import schema as s
from seedvar.record.environment import device_name, environment, to_json
from seedvar.record.retry import StoreUnavailable, interrupts_held
from seedvar.record.store import Store
from seedvar.results import EpochStats, RunResult, Status, describe

# Seconds an epoch's metrics may wait for an unreachable store before training goes on without them
# (they are sent with the next epoch).
EPOCH_RETRY_SECONDS = 10.0


def run_params(cfg: RunConfig) -> dict[str, str]:
    """Every resolved setting and every per-source seed, flat, as MLflow params."""
    flat: dict[str, Any] = {
        s.PARAM_DATASET: cfg.dataset,
        s.PARAM_MODEL: cfg.model,
        s.PARAM_DETERMINISTIC: cfg.deterministic,
        s.PARAM_DEVICE: cfg.device,
        s.PARAM_REPLICATE: cfg.replicate,
        s.PARAM_VARIED: cfg.varied,
    }
    flat.update({f"{s.PARAM_DATASET_PREFIX}{k}": v for k, v in sorted(cfg.dataset_options.items())})
    flat.update({f"{s.PARAM_MODEL_PREFIX}{k}": v for k, v in sorted(cfg.model_options.items())})
    if cfg.model_source_sha256 is not None:
        flat[s.PARAM_MODEL_SOURCE] = cfg.model_source_sha256
    flat.update({f"{s.PARAM_TRAIN_PREFIX}{k}": v for k, v in dataclasses.asdict(cfg.train).items()})
    flat.update({f"{s.PARAM_TEST_PREFIX}{k}": v for k, v in dataclasses.asdict(cfg.test).items()})
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
        env_tags = {s.environment_tag(k): v for k, v in env.items()}
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
        store.end(run_id, Status.FAILED)

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
        self.store.end(self.run_id, Status.FINISHED)

    def stand_down(self) -> None:
        """A new run whose claim lost to another sweep's: it never trained, so it is removed."""
        with contextlib.suppress(Exception):
            self.store.delete_run(self.run_id)

    def fail(self, reason: str) -> None:
        """FAILED with its reason; recording must not raise over the error being recorded."""
        with contextlib.suppress(Exception):
            self.store.log(self.run_id, tags={s.TAG_FAILURE: reason})
            self.store.end(self.run_id, Status.FAILED)

    def kill(self, reason: str) -> None:
        """KILLED (Ctrl-C, SIGTERM): recorded whole even if the user presses Ctrl-C again."""
        with interrupts_held(deliver=False), contextlib.suppress(Exception):
            self.store.log(self.run_id, tags={s.TAG_FAILURE: reason})
            self.store.end(self.run_id, Status.KILLED)

    def log_node(self, node: str) -> None:
        """Where the run ran, when its executor says (a Ray node id)."""
        with contextlib.suppress(Exception):
            self.store.log(self.run_id, tags={s.TAG_RAY_NODE: node})


def log_tested(store: Store, run_id: str, result: RunResult, info: Mapping[str, str]) -> None:
    """A model trained elsewhere and tested by seedvar, into that run (seedvar.log_test_modes): the
    predictions first (an artifact is the part that can fail half-way without a trace in the table),
    then the test params, the kind tag the report looks for, and the test.* metrics. Nothing else of
    the user's run is touched, and its status is left as it is."""
    store.log_files(run_id, {s.ARTIFACT_PREDICTIONS: result.predictions.to_bytes()})
    store.log(run_id, params={**s.test_params(result), **info})
    store.log(run_id, s.test_metrics(result), tags={s.TAG_KIND: s.KIND_TESTED})
