"""Where each run of a plan stands before a sweep goes on: done, running elsewhere, resumable, or pending."""

from __future__ import annotations

import pandas as pd

from seedvar.plan import RunConfig
from seedvar.plan.execution import Execution
from seedvar.record import schema as s
from seedvar.record.checkpoint_store import checkpoints_for
from seedvar.record.claims import claims_for
from seedvar.record.reader import StoredRun, child_runs
from seedvar.record.store import Store

# Where a run of the plan stands (the `status` column of --dry-run's table).
DONE, RUNNING, RESUMABLE, PENDING = "done", "running", "resumable", "pending"


def plan_status(
    store: Store | None, experiment_id: str | None, configs: list[RunConfig], execution: Execution
) -> dict[str, str]:
    """done / running / resumable / pending for each config hash, read from the store and the claims."""
    status = {c.config_hash: PENDING for c in configs}
    if store is None or experiment_id is None:
        return status
    claims = claims_for(store, experiment_id, timeout=execution.claim_timeout)
    checkpoints = checkpoints_for(store, experiment_id)
    runs: dict[str, list[StoredRun]] = {}
    for run in child_runs(store, experiment_id):
        runs.setdefault(run.config_hash, []).append(run)
        if run.config_hash in status and run.finished:
            status[run.config_hash] = DONE
    for key, state in status.items():
        if state == PENDING and claims.is_claimed(key, runs.get(key, [])):
            status[key] = RUNNING
        elif state == PENDING and checkpoints.exists(key):
            status[key] = RESUMABLE
    return status


def plan_table(configs: list[RunConfig], status: dict[str, str]) -> pd.DataFrame:
    """The expanded plan, one row per run with its seeds, hash and status (what --dry-run prints)."""
    rows = [
        {
            "run": c.run_name,
            "model": c.model,
            "deterministic": c.deterministic,
            **({"variant": c.variant} if c.variant else {}),
            "varied": c.varied,
            "replicate": c.replicate,
            **{f"{s.PARAM_SEED_PREFIX}{k}": v for k, v in c.seeds.items()},
            "hash": c.config_hash,
            "status": status[c.config_hash],
        }
        for c in configs
    ]
    return pd.DataFrame(rows)
