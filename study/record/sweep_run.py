"""A sweep's record: the study's experiment made to open on its conditions in MLflow's UI, and the sweep's
parent run (settings, spec, plan, heartbeat, end status); sweeps whose process died are closed FAILED."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from seedvar.plan import RunConfig, Study
from seedvar.plan.execution import DEFAULT_CLAIM_TIMEOUT
from seedvar.record import schema as s
from seedvar.record import view
from seedvar.record.claims import LocalClaims, RunClaims, beating, claims_for, is_live
from seedvar.record.environment import to_json
from seedvar.record.reader import get_run, read_runs
from seedvar.record.retry import interrupts_held
from seedvar.record.store import Store
from seedvar.results import Status
from seedvar.stats.twostage import Decision, Target


def tag_experiment(
    store: Store,
    experiment_id: str,
    configs: list[RunConfig],
    target: Target | None = None,
    claims: Sequence[tuple[str, float]] = (),
) -> None:
    """Make the study open in MLflow's UI as a model-training experiment on seedvar's shared view of
    its runs table (its conditions as rows), with this plan's modes among its columns; a two-stage study
    also keeps its target, so that its report can state and check the rule, and a study with claims keeps
    them for its reports."""
    modes = list(dict.fromkeys(m for c in configs for m in c.test.modes))
    current = store.experiment_tags(experiment_id)
    tags = view.experiment_tags(modes, current)
    if target is not None and target.active:
        tags[s.TAG_TARGET] = target.to_json()
    if claims:
        tags[s.TAG_CLAIMS] = json.dumps(dict(claims))
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
        if run.status != Status.RUNNING:
            continue
        owner = run.tags.get(s.TAG_OWNER)
        if isinstance(claims, LocalClaims) and owner:
            with claims.claim(_sweep_key(owner), remove=True) as lock:
                # under its lock, read again: a sweep that just ended let go of its lock after ending
                if lock.held and get_run(store, run.run_id).status == Status.RUNNING:
                    _close_dead(store, run.run_id, "the sweep's process stopped")
        elif not is_live(run, timeout):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.heartbeat))
            _close_dead(store, run.run_id, f"the sweep's process stopped (no heartbeat since {since})")


def _close_dead(store: Store, run_id: str, reason: str) -> None:
    store.log(run_id, tags={s.TAG_FAILURE: reason})
    store.end(run_id, Status.FAILED)


def _study_params(study: Study, device: str) -> dict[str, str]:
    return {
        "study": study.name,
        s.PARAM_DATASET: study.dataset,
        "models": ",".join(study.models),
        s.PARAM_DEVICE: device,
        s.PARAM_DETERMINISTIC: ",".join(str(d).lower() for d in study.deterministic),
        "seeds.base": str(study.seeds.base),
        "seeds.replicates": str(study.seeds.replicates),
        "seeds.vary": ",".join(study.seeds.vary),
        "seeds.fixed": ",".join(f"{k}={v}" for k, v in sorted(study.seeds.fixed.items())) or "none",
        **({"dataset.compared": ",".join(study.dataset_axes)} if study.dataset_axes else {}),
        "train.epochs": str(study.train.epochs),
        "test.modes": ",".join(study.test.modes),
        "test.passes": str(study.test.passes),
    }
